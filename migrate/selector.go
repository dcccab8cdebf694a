package migrate

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmqproducer "github.com/apache/rocketmq-client-go/v2/producer"
)

// keyQueueSelector is the Producer's default queue selector: a message
// with a sharding key goes to queue FNV-1a(key) mod len(queues), the queue
// rocketmq-client-go's NewHashQueueSelector picks (on 64-bit platforms),
// so all messages of a key share a queue while the topic's route does not
// change; a message without one goes round-robin, as with the client's
// default selector. The client's own hash selector sends keyless messages
// to random queues, and its default round-robin selector ignores the key.
//
// The hash is the one KeySide uses, so at a partial weight the keys on a
// cluster may use only some of its queues (with 4 queues and weight 1, the
// keys sent to the new cluster all have FNV-1a mod 100 == 0, and so share
// queue 0); those queues then carry no more than their share at weight
// 100 (old cluster: weight 0), so no queue is loaded beyond what the
// cluster must carry when it takes the whole topic.
type keyQueueSelector struct {
	keyless rmqproducer.QueueSelector
}

func newKeyQueueSelector() *keyQueueSelector {
	return &keyQueueSelector{keyless: rmqproducer.NewRoundRobinQueueSelector()}
}

// Select implements rmqproducer.QueueSelector. A retry after a failed send
// (lastBroker set) keeps a key's queue, as the client's hash selector does:
// per-key order wins over moving to another broker.
func (s *keyQueueSelector) Select(m *primitive.Message, mqs []*primitive.MessageQueue, lastBroker string) *primitive.MessageQueue {
	if len(mqs) == 0 {
		return nil
	}
	key := m.GetShardingKey()
	if key == "" && m.Batch {
		key = batchKey(m.Body)
	}
	if key == "" {
		return s.keyless.Select(m, mqs, lastBroker)
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return mqs[h.Sum32()%uint32(len(mqs))]
}

// batchKey returns the sharding key of the first message of a batch body
// as the client encodes it (producer.MarshalMessageBatch), or "". The
// client hands the selector a message of its own for a batch, without the
// properties of the messages in it; the Producer routes a batch by its
// first message, and so does this selector.
//
// Each message is TOTALSIZE(4) MAGIC(4) BODYCRC(4) FLAG(4) BODYSIZE(4)
// BODY PROPERTYSIZE(2) PROPERTIES, the properties being
// name\x01value\x02 pairs.
func batchKey(b []byte) string {
	const head = 20
	if len(b) < head+2 {
		return ""
	}
	bodyLen := uint64(binary.BigEndian.Uint32(b[16:head]))
	if bodyLen > uint64(len(b)-head-2) {
		return ""
	}
	pos := head + int(bodyLen)
	n := int(binary.BigEndian.Uint16(b[pos:]))
	pos += 2
	if n > len(b)-pos {
		return ""
	}
	for _, kv := range bytes.Split(b[pos:pos+n], []byte{2}) {
		if k, v, ok := bytes.Cut(kv, []byte{1}); ok && string(k) == primitive.PropertyShardingKey {
			return string(v)
		}
	}
	return ""
}
