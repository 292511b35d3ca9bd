// Small RapidJSON accessors shared by the config reader and the schema
// validator.
#pragma once

#include <rapidjson/document.h>

namespace crmsync::mapping {

// The member `name` of `object`; nullptr when `object` is null, not an
// object, or has no such member.
template <typename Name>
const rapidjson::Value* FindJsonMember(const rapidjson::Value* object, const Name& name) {
  if (object == nullptr || !object->IsObject()) return nullptr;
  auto it = object->FindMember(name);
  return it == object->MemberEnd() ? nullptr : &it->value;
}

}  // namespace crmsync::mapping
