package rmqtest

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Properties of the messages ProducePaced sends.
const (
	// SentAtProperty is when the message was handed to the client to send,
	// in Unix nanoseconds: a born timestamp finer than the broker's
	// milliseconds, taken on the same clock as the consumer's.
	SentAtProperty = "rmqkit_test_sent_ns"
	// SeqProperty is the message's index in its ProducePaced call, from 0.
	SeqProperty = "rmqkit_test_seq"
)

// ProducePaced sends n messages to topic at a steady rate (messages per
// second), one message per send, from first, first+1, ... (SeqProperty),
// each stamped with SentAtProperty just before it is sent. Sends run on
// several goroutines, so that a slow send does not delay the schedule; a
// message late for its slot is sent at once. It returns when all were sent
// and fails the test on a send error.
func (p *Producer) ProducePaced(topic string, first, n int, rate float64) {
	p.t.Helper()
	const workers = 16
	due := make(chan int, 4096)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range due {
				m := primitive.NewMessage(topic, []byte("paced"))
				m.WithProperty(SeqProperty, strconv.Itoa(i))
				m.WithProperty(IDProperty, "paced-"+strconv.Itoa(i))
				m.WithProperty(SentAtProperty, strconv.FormatInt(time.Now().UnixNano(), 10))
				if err := p.sendOne(m); err != nil {
					errs <- fmt.Errorf("send %d: %w", i, err)
					for range due { // drain, so that the pacer never blocks
					}
					return
				}
			}
		}()
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		due <- first + i
	}
	close(due)
	wg.Wait()
	close(errs)
	for err := range errs {
		p.t.Fatalf("paced produce to %s: %v", topic, err)
	}
}
