#include "worker/kafka/handles.h"

namespace crmsync::kafka {

void KafkaDeleter::operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }

}  // namespace crmsync::kafka
