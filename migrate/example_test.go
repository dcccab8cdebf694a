package migrate_test

import (
	"context"
	"fmt"
	"log"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/migrate"
)

// A service that consumes and produces one topic during its move from one
// cluster to another, driven by a control file.
func Example() {
	ctx := context.Background()
	old := migrate.Cluster{NameServers: []string{"10.0.0.1:9876"}}
	new := migrate.Cluster{NameServers: []string{"10.0.1.1:9876"}}

	sub, err := migrate.NewSubscription(old, new, "billing", "orders", consumer.All,
		func(ctx context.Context, m *consumer.Message) error {
			fmt.Println("order", m.ID)
			return nil
		})
	if err != nil {
		log.Fatal(err)
	}
	prod, err := migrate.NewProducer(old, new)
	if err != nil {
		log.Fatal(err)
	}
	defer prod.Shutdown()

	// /etc/billing/migrate.yaml holds e.g. "phase: dual\nweight: 50\n".
	w, err := migrate.Watch(ctx, "/etc/billing/migrate.yaml", sub, prod)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	if err := sub.Start(ctx); err != nil { // in the file's phase
		log.Fatal(err)
	}
	defer sub.Stop(ctx)

	msg := primitive.NewMessage("orders", []byte("...")).WithShardingKey("customer-42")
	if _, err := prod.SendSync(ctx, msg); err != nil {
		log.Print(err)
	}
}

// The weight decides the cluster of a sharding key; a key moves to the new
// cluster once, as the weight grows, and never back.
func ExampleKeySide() {
	// FNV-1a("customer-1") mod 100 is 23: it moves at weight 24.
	for _, w := range []int{0, 23, 24, 100} {
		fmt.Println(w, migrate.KeySide("customer-1", w))
	}
	// Output:
	// 0 old
	// 23 old
	// 24 new
	// 100 new
}

func ExampleParse() {
	doc, err := migrate.Parse([]byte("phase: dual\nweight: 50\n"))
	fmt.Println(doc, err)
	_, err = migrate.Parse([]byte("phase: dual\nweight: 150\n"))
	fmt.Println(err)
	// The migration section of the consumer's configuration file: one file
	// for both (package config reads the rest).
	doc, err = migrate.Parse([]byte("group: billing\nsubscriptions:\n  invoices: {poolSize: 16}\nmigration: {phase: new-only, weight: 100}\n"))
	fmt.Println(doc, err)
	// Output:
	// phase: dual, weight: 50 <nil>
	// config: weight (line 2): 150 is outside [0, 100]
	// phase: new-only, weight: 100 <nil>
}
