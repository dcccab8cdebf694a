//go:build integration

package rmqotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/admin"
	"github.com/rmqkit/rmqkit/internal/rmqtest"
	"github.com/rmqkit/rmqkit/rmqotel"
)

// Instrument takes what rmqotel needs from the consumer it is given to: the
// namespace lands on every span without WithNamespace, the lag gauge reads
// the consumer's Lag without WithLagFunc, and the gauges are registered
// from Start to Stop only.
func TestInstrumentTakesNamespaceAndLagFromTheConsumer(t *testing.T) {
	t.Parallel()
	cl := rmqtest.ClusterA(t)
	topic := rmqtest.Name(t, "T")
	ns := "ns" + topic[len(topic)-8:]
	adm, err := admin.New([]string{cl.NameServer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := adm.CreateTopic(ctx, ns+"%"+topic, 2, false); err != nil {
		t.Fatal(err)
	}
	ids := cl.NewProducer(t).Produce(ns+"%"+topic, "m", 10)

	tel := newTelemetry(t)
	group := cl.NewGroup(t)
	got := rmqtest.NewCollector()
	c, err := consumer.New(group,
		consumer.WithNameServer(cl.NameServer),
		consumer.WithNamespace(ns),
		consumer.WithStartPosition(consumer.StartFromEarliest),
		rmqotel.Instrument(tel.opts()...),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.All, func(_ context.Context, m *consumer.Message) error {
		got.Add(m.Property(rmqtest.IDProperty))
		return nil
	}, consumer.WithPoolSize(3)); err != nil {
		t.Fatal(err)
	}
	if _, ok := tel.metrics(t)["rmqkit.pool.capacity"]; ok {
		t.Fatal("pool gauges registered before Start")
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	got.RequireAll(t, ids, 60*time.Second)
	rmqtest.WaitUntil(5*time.Second, func() bool { return len(processSpans(tel)) >= len(ids) })
	spans := processSpans(tel)
	if len(spans) < len(ids) {
		t.Fatalf("%d process spans for %d messages", len(spans), len(ids))
	}
	for _, s := range spans {
		a := attrMap(s.Attributes())
		if a["messaging.rocketmq.namespace"] != ns || a["messaging.rocketmq.consumption_model"] != "clustering" || a["messaging.destination.name"] != topic {
			t.Fatalf("span attributes %v; want namespace %q, clustering, destination %q", a, ns, topic)
		}
	}
	// The brokers report lag once the group has committed an offset.
	if !rmqtest.WaitUntil(30*time.Second, func() bool { _, err := c.Lag(context.Background()); return err == nil }) {
		t.Fatal("no lag figures from the brokers in 30s")
	}
	m := tel.metrics(t)
	if caps := gaugeValues(t, group, m["rmqkit.pool.capacity"]); caps[topic] != 3 {
		t.Fatalf("pool capacity gauge %v, want %s: 3", caps, topic)
	}
	if _, ok := gaugeValues(t, group, m["rmqkit.consumer.lag"])[topic]; !ok {
		t.Fatalf("no lag series for %s: the consumer's Lag was not used", topic)
	}

	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := c.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	if pts, ok := tel.metrics(t)["rmqkit.pool.capacity"]; ok && len(gaugeValues(t, group, pts)) != 0 {
		t.Fatalf("pool gauges still observed after Stop: %v", gaugeValues(t, group, pts))
	}
}
