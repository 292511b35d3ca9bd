#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <iterator>
#include <memory>

#include "mapping/config_reader.h"
#include "mapping/json_schema.h"

// The "kafka" and "formats" sections: topics, librdkafka properties checked
// against librdkafka itself, and the per-format identity and field names.
namespace crmsync::mapping {
namespace {

constexpr std::string_view kContactFieldNames[] = {"email", "firstName", "lastName", "phone"};

}  // namespace

void ConfigReader::ReadKafka(const rapidjson::Value* kafka, Config& config) {
  KafkaConfig& out = config.kafka;
  ReadString(kafka, "bootstrapServers", out.bootstrap_servers);
  ReadString(kafka, "groupId", out.group_id);
  ReadString(kafka, "groupInstanceId", out.group_instance_id);
  ReadString(kafka, "deadLetterTopic", out.dead_letter_topic);
  if (const rapidjson::Value* topics = Member(kafka, "topics");
      topics != nullptr && topics->IsArray()) {
    for (rapidjson::SizeType i = 0; i < topics->Size(); ++i) {
      const rapidjson::Value& topic = (*topics)[i];
      if (topic.IsString()) {
        out.topics.push_back(Text(topic));
        continue;
      }
      std::string name;
      ReadString(&topic, "name", name);
      if (name.empty()) continue;
      if (std::find(out.topics.begin(), out.topics.end(), name) != out.topics.end()) {
        Problem("/kafka/topics/" + std::to_string(i) + "/name",
                "topic '" + name + "' is listed more than once");
        continue;
      }
      out.topics.push_back(name);
      std::string format_name = "auto";
      ReadString(&topic, "format", format_name);
      const std::optional<InputFormat> format = ParseInputFormat(format_name);
      if (format && *format != InputFormat::kAuto) config.rules.input.topic_formats[name] = *format;
    }
  }
  const rapidjson::Value* properties = Member(kafka, "properties");
  if (properties == nullptr || !properties->IsObject()) return;
  std::unique_ptr<rd_kafka_conf_t, void (*)(rd_kafka_conf_t*)> scratch(rd_kafka_conf_new(),
                                                                       &rd_kafka_conf_destroy);
  for (const auto& property : properties->GetObject()) {
    const std::string name = Text(property.name);
    const std::string path = "/kafka/properties/" + EscapePointerToken(name);
    const char* owner = WorkerOwnedProperty(name);
    // The worker sets group.instance.id only from kafka.groupInstanceId.
    if (name == "group.instance.id" && !out.group_instance_id.empty()) {
      owner = "kafka.groupInstanceId sets it";
    }
    if (owner != nullptr) {
      Problem(path,
              "'" + name + "' is set by the worker and cannot be configured here (" + owner + ")");
      continue;
    }
    std::optional<std::string> value;
    std::string origin;  // where a secret came from; empty for a literal
    bool placeholder = false;
    if (property.value.IsObject()) {
      value = ResolveSecret(path, &property.value, "kafka property", origin, placeholder);
      if (!value) {
        // Unresolved: still check that librdkafka knows the name.
        CheckKafkaPropertyName(path, name);
        continue;
      }
    } else {
      value = ScalarText(property.value);
      if (!value) continue;  // the schema reports the type
    }
    if (placeholder) {
      CheckKafkaPropertyName(path, name);
    } else {
      CheckKafkaProperty(path, name, *value, origin, scratch.get());
    }
    out.properties[name] = std::move(*value);
  }
}

const char* ConfigReader::WorkerOwnedProperty(const std::string& name) {
  static const std::map<std::string, const char*, std::less<>> kOwned = {
      {"bootstrap.servers", "use kafka.bootstrapServers"},
      {"metadata.broker.list", "use kafka.bootstrapServers"},
      {"group.id", "use kafka.groupId"},
      {"enable.auto.commit",
       "offsets are committed by the worker once every operation of a message is done"},
      {"enable.auto.offset.store",
       "offsets are stored by the worker once every operation of a message is done"},
      {"partition.assignment.strategy", "the worker always uses cooperative-sticky"},
  };
  auto it = kOwned.find(name);
  return it == kOwned.end() ? nullptr : it->second;
}

void ConfigReader::CheckKafkaPropertyName(const std::string& path, const std::string& name) {
  std::unique_ptr<rd_kafka_conf_t, void (*)(rd_kafka_conf_t*)> conf(rd_kafka_conf_new(),
                                                                    &rd_kafka_conf_destroy);
  char errstr[512];
  if (rd_kafka_conf_set(conf.get(), name.c_str(), "", errstr, sizeof(errstr)) ==
      RD_KAFKA_CONF_UNKNOWN) {
    Problem(path, "unknown librdkafka property '" + name + "'");
  }
}

void ConfigReader::CheckKafkaProperty(const std::string& path, const std::string& name,
                                      const std::string& value, const std::string& origin,
                                      rd_kafka_conf_t* scratch) {
  char errstr[512] = {};
  switch (rd_kafka_conf_set(scratch, name.c_str(), value.c_str(), errstr, sizeof(errstr))) {
    case RD_KAFKA_CONF_OK:
      return;
    case RD_KAFKA_CONF_UNKNOWN:
      Problem(path, "unknown librdkafka property '" + name + "'");
      return;
    case RD_KAFKA_CONF_INVALID:
      if (!origin.empty()) {
        Problem(path, "the value from " + origin + " is not valid for librdkafka property '" +
                          name + "'");
      } else {
        Problem(path, "invalid value for librdkafka property '" + name +
                          "': " + WithoutFinalPeriod(errstr));
      }
      return;
  }
}

void ConfigReader::ReadFormat(const std::string& path, const rapidjson::Value* object,
                              FormatOptions& out) {
  if (object == nullptr || !object->IsObject()) return;
  ReadString(object, "externalIdKey", out.external_id_key);
  if (out.external_id_key.find(':') != std::string::npos) {
    Problem(path + "/externalIdKey",
            "'" + out.external_id_key + "' must not contain ':' (it separates key and value)");
  }
  ReadString(object, "statusField", out.status_field);
  ReadString(object, "idField", out.id_field);
  const rapidjson::Value* fields = Member(object, "contactFields");
  if (fields == nullptr || !fields->IsObject()) return;
  out.contact_fields.clear();
  for (const auto& field : fields->GetObject()) {
    if (!field.value.IsString()) continue;
    const std::string target = Text(field.value);
    const bool known = std::find(std::begin(kContactFieldNames), std::end(kContactFieldNames),
                                 target) != std::end(kContactFieldNames);
    if (!known) {
      Problem(path + "/contactFields/" + EscapePointerToken(Text(field.name)),
              "'" + target + "' is not a contact field (email, firstName, lastName, phone)");
      continue;
    }
    out.contact_fields[Text(field.name)] = target;
  }
}

void ConfigReader::ReadFormats(const rapidjson::Value* formats, DecodeOptions& out) {
  ReadFormat("/formats/hubspot", Member(formats, "hubspot"), out.hubspot);
  ReadFormat("/formats/salesforce", Member(formats, "salesforce"), out.salesforce);
  ReadFormat("/formats/debezium", Member(formats, "debezium"), out.debezium);
}

}  // namespace crmsync::mapping
