package rmqtest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// IDProperty is the message property that carries the test id of every
// message Produce sends.
const IDProperty = "rmqkit_test_id"

// Producer sends test messages to one cluster.
type Producer struct {
	t testing.TB
	p interface {
		SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
		Shutdown() error
	}
}

// NewProducer starts a producer on the cluster, shut down at the end of the
// test.
func (c *Cluster) NewProducer(t testing.TB) *Producer {
	t.Helper()
	opts := []producer.Option{
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{c.NameServer})),
		producer.WithGroupName(Name(t, "P")),
		producer.WithInstanceName(Name(t, "pi")),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(10 * time.Second),
	}
	if cr := c.Credentials(); cr != nil {
		opts = append(opts, producer.WithCredentials(*cr))
	}
	p, err := producer.NewDefaultProducer(opts...)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("producer start: %v", err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return &Producer{t: t, p: p}
}

// Msg describes one message to send.
type Msg struct {
	ID       string            // unique id, stored in IDProperty and as the key
	Tag      string            // optional tag
	ShardKey string            // optional sharding key; the producer's round-robin selector ignores it (use SendBatch for one queue)
	Props    map[string]string // extra properties
	Body     []byte            // body; defaults to the id
}

// Send sends msgs in order, synchronously, and fails the test on error.
func (p *Producer) Send(topic string, msgs ...Msg) {
	p.t.Helper()
	for _, m := range msgs {
		if err := p.sendOne(m.message(topic)); err != nil {
			p.t.Fatalf("send %s to %s: %v", m.ID, topic, err)
		}
	}
}

// message builds the client message of m: the id as IDProperty and key,
// the body defaulting to the id.
func (m Msg) message(topic string) *primitive.Message {
	body := m.Body
	if body == nil {
		body = []byte(m.ID)
	}
	pm := primitive.NewMessage(topic, body)
	pm.WithProperty(IDProperty, m.ID)
	pm.WithKeys([]string{m.ID})
	if m.Tag != "" {
		pm.WithTag(m.Tag)
	}
	if m.ShardKey != "" {
		pm.WithShardingKey(m.ShardKey)
	}
	for k, v := range m.Props {
		pm.WithProperty(k, v)
	}
	return pm
}

// SendBatch sends msgs as one batch, synchronously: the broker stores them in
// one queue, in order, also when the topic has queues on several brokers.
// Tags, sharding keys and properties are kept; Body defaults to the id.
func (p *Producer) SendBatch(topic string, msgs ...Msg) {
	p.t.Helper()
	batch := make([]*primitive.Message, 0, len(msgs))
	for _, m := range msgs {
		batch = append(batch, m.message(topic))
	}
	if err := p.sendOne(batch...); err != nil {
		p.t.Fatalf("send a batch of %d to %s: %v", len(msgs), topic, err)
	}
}

func (p *Producer) sendOne(m ...*primitive.Message) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		var res *primitive.SendResult
		res, err = p.p.SendSync(ctx, m...)
		cancel()
		if err == nil && res.Status == primitive.SendOK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("send status %v", res.Status)
		}
		time.Sleep(200 * time.Millisecond) // a busy broker on a small machine says so briefly
	}
	return err
}

// Produce sends n messages with ids "<prefix>-0" ... and returns the ids.
// It sends batches from several goroutines; order across messages is not
// kept.
func (p *Producer) Produce(topic, prefix string, n int) []string {
	p.t.Helper()
	return p.ProduceSized(topic, prefix, n, 0)
}

// ProduceSized is Produce with bodies of size bytes (0: the id itself).
func (p *Producer) ProduceSized(topic, prefix string, n, size int) []string {
	p.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + "-" + strconv.Itoa(i)
	}
	const workers, batch = 8, 32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Worker w sends batches w, w+workers, ...
			for start := w * batch; start < n; start += workers * batch {
				end := min(start+batch, n)
				msgs := make([]*primitive.Message, 0, end-start)
				for _, id := range ids[start:end] {
					body := []byte(id)
					if size > 0 {
						body = make([]byte, size)
						copy(body, id)
					}
					pm := primitive.NewMessage(topic, body)
					pm.WithProperty(IDProperty, id)
					pm.WithKeys([]string{id})
					msgs = append(msgs, pm)
				}
				if err := p.sendOne(msgs...); err != nil {
					errs <- fmt.Errorf("send %s..%s: %w", ids[start], ids[end-1], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		p.t.Fatalf("produce to %s: %v", topic, err)
	}
	return ids
}
