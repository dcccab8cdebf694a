package consumer_test

import (
	"context"
	"log"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/throttle"
)

// Rate limits at three levels, changed live.
func ExampleConsumer_SetRate() {
	// One process limiter for every consumer of the process.
	process, err := throttle.New(throttle.Limit{Rate: 5000})
	if err != nil {
		log.Fatal(err)
	}
	c, err := consumer.New("orders",
		consumer.WithNameServer("127.0.0.1:9876"),
		consumer.WithProcessLimiter(process),
		// 2000 msg/s for the whole group, split between its live instances.
		consumer.WithGroupQuota(throttle.Limit{Rate: 2000}),
	)
	if err != nil {
		log.Fatal(err)
	}
	handle := func(ctx context.Context, m *consumer.Message) error { return nil }
	err = c.Subscribe("orders-created", consumer.All, handle,
		consumer.WithRate(throttle.Limit{Rate: 200, Burst: 20}))
	if err != nil {
		log.Fatal(err)
	}
	// ... c.Start(ctx) ...

	// Later, from an admin endpoint or a configuration reload:
	if err := c.SetRate("orders-created", throttle.Limit{Rate: 500}); err != nil {
		log.Print(err) // invalid: the old limit stays in force
	}
	_ = c.Stop(context.Background())
}
