// Command throttle runs a consumer driven by a configuration file and
// feeds it a steady stream of messages. Every second it prints the
// configured rate and pool size beside the measured consume rate; edit the
// file while it runs and the change applies at once, without a restart.
//
//	go run ./examples/throttle -duration 30
//	# in another terminal:
//	sed -i 's/rate: 100 /rate: 250 /' examples/throttle/rmqkit.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/examples/exampleutil"
	"github.com/rmqkit/rmqkit/rmqlog"
	"github.com/rmqkit/rmqkit/throttle"
)

func main() {
	cluster := exampleutil.Flags()
	path := flag.String("config", "examples/throttle/rmqkit.yaml", "configuration file (watched)")
	produce := flag.Float64("produce", 300, "messages per second to produce")
	duration := flag.Int("duration", 0, "exit after this many seconds (0: run until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*duration)*time.Second)
		defer cancel()
	}
	if err := run(ctx, cluster, *path, *produce); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, cluster *exampleutil.Cluster, path string, produceRate float64) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rmqlog.Install(logger, rmqlog.WithLevel(slog.LevelError))

	// The example creates the file's topics first.
	doc, err := config.Load(path)
	if err != nil {
		return err
	}
	topics := make([]string, 0, len(doc.Subscriptions))
	for t := range doc.Subscriptions {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	if len(topics) == 0 {
		return fmt.Errorf("%s: no subscriptions", path)
	}
	for _, t := range topics {
		if err := cluster.CreateTopic(ctx, t, 4); err != nil {
			return err
		}
	}
	process, err := throttle.New(throttle.Limit{}) // shared by all consumers of a real program
	if err != nil {
		return err
	}
	// The file drives the consumer: its settings at Subscribe, the whole
	// file at Start, then every change of it live, until Stop.
	c, err := consumer.New(doc.Group,
		consumer.WithNameServer(cluster.NameServer),
		consumer.WithProcessLimiter(process),
		consumer.WithLogger(logger),
		config.File(path,
			config.WithLogger(logger),
			config.WithOnApply(func(changes []config.Change) {
				for _, ch := range changes {
					fmt.Printf("%s applied  %s\n", stamp(), ch)
				}
			}),
			config.WithOnError(func(err error) { fmt.Printf("%s rejected %v\n", stamp(), err) }),
		),
	)
	if err != nil {
		return err
	}
	handle := func(context.Context, *consumer.Message) error {
		time.Sleep(5 * time.Millisecond) // some work
		return nil
	}
	for _, t := range topics {
		if err := c.Subscribe(t, consumer.All, handle); err != nil {
			return err
		}
	}

	if err := c.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	}()

	p, err := cluster.NewProducer()
	if err != nil {
		return err
	}
	defer p.Shutdown()
	go produce(ctx, p, topics, produceRate)

	fmt.Printf("%s consuming %v as group %s, producing %v msg/s; edit %s to change limits\n",
		stamp(), topics, doc.Group, produceRate, path)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := map[string]uint64{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		set := c.Settings()
		stats := c.Stats()
		for i, s := range set.Subscriptions {
			st := stats[i]
			fmt.Printf("%s %s: consumed %4d/s  rate limit %-18s pool %d (%d running)  waiting for the limit %d  group %s\n",
				stamp(), s.Topic, st.Succeeded-last[s.Topic], s.Rate.String(), s.PoolSize, st.Pool.Running,
				st.Throttle.Waiting, group(set))
			last[s.Topic] = st.Succeeded
		}
	}
}

func group(s consumer.Settings) string {
	if s.GroupQuota {
		return fmt.Sprintf("quota %v over %d instances (%v here)", s.GroupLimit, max(s.Instances, 1), s.InstanceLimit)
	}
	return s.GroupLimit.String()
}

// produce sends to every topic at rate messages per second until ctx ends.
func produce(ctx context.Context, p exampleutil.Producer, topics []string, rate float64) {
	lim, err := throttle.New(throttle.Limit{Rate: rate})
	if err != nil {
		log.Print(err)
		return
	}
	for i := 0; ; i++ {
		if lim.Wait(ctx) != nil {
			return
		}
		t := topics[i%len(topics)]
		msg := primitive.NewMessage(t, []byte(fmt.Sprintf("message %d", i)))
		if _, err := p.SendSync(ctx, msg); err != nil && ctx.Err() == nil {
			log.Printf("send: %v", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func stamp() string { return time.Now().Format("15:04:05") }
