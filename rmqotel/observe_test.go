package rmqotel_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/rmqotel"
)

// gaugeValues returns an int64 gauge's (or counter's) values by destination
// name, checking that each point belongs to group.
func gaugeValues(t testing.TB, group string, m metricdata.Metrics) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	var points []metricdata.DataPoint[int64]
	switch d := m.Data.(type) {
	case metricdata.Gauge[int64]:
		points = d.DataPoints
	case metricdata.Sum[int64]:
		points = d.DataPoints
	default:
		t.Fatalf("%s is %T", m.Name, m.Data)
	}
	for _, dp := range points {
		v, _ := dp.Attributes.Value("messaging.destination.name")
		if g, _ := dp.Attributes.Value("messaging.consumer.group.name"); g.AsString() != group {
			t.Errorf("%s: group = %q, want %s", m.Name, g.AsString(), group)
		}
		if s, _ := dp.Attributes.Value("messaging.system"); s.AsString() != "rocketmq" {
			t.Errorf("%s: messaging.system = %q", m.Name, s.AsString())
		}
		out[v.AsString()] = dp.Value
	}
	return out
}

// idleConsumer returns a consumer with two subscriptions that is never
// started: Stats work without a broker.
func idleConsumer(t *testing.T) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New("billing", consumer.WithNameServer("127.0.0.1:1"), consumer.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	if err := c.Subscribe("orders", consumer.All, ok, consumer.WithPoolSize(7)); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("refunds", consumer.All, ok, consumer.WithPoolSize(2)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestObserveConsumerReportsPoolsPerSubscription(t *testing.T) {
	tel := newTelemetry(t)
	c := idleConsumer(t)
	stop, err := rmqotel.ObserveConsumer(c, rmqotel.WithMeterProvider(tel.mp), rmqotel.WithLagFunc(nil)) // no broker here
	if err != nil {
		t.Fatal(err)
	}
	m := tel.metrics(t)
	want := map[string]map[string]int64{
		"rmqkit.pool.capacity":            {"orders": 7, "refunds": 2},
		"rmqkit.pool.running":             {"orders": 0, "refunds": 0},
		"rmqkit.pool.waiting":             {"orders": 0, "refunds": 0},
		"rmqkit.consumer.dead_lettered":   {"orders": 0, "refunds": 0},
		"rmqkit.consumer.handler.overran": {"orders": 0, "refunds": 0},
	}
	for name, w := range want {
		if got := gaugeValues(t, "billing", m[name]); len(got) != len(w) || got["orders"] != w["orders"] || got["refunds"] != w["refunds"] {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
	if _, ok := m["rmqkit.consumer.lag"]; ok {
		t.Error("lag reported without WithLagFunc")
	}
	units := map[string]string{"rmqkit.pool.capacity": "{worker}", "rmqkit.pool.running": "{worker}", "rmqkit.pool.waiting": "{message}"}
	for name, u := range units {
		if m[name].Unit != u {
			t.Errorf("%s unit %q, want %q", name, m[name].Unit, u)
		}
	}
	if err := c.SetPoolSize("orders", 12); err != nil {
		t.Fatal(err)
	}
	if got := gaugeValues(t, "billing", tel.metrics(t)["rmqkit.pool.capacity"]); got["orders"] != 12 {
		t.Errorf("capacity after resize = %v, want orders 12", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := tel.metrics(t); len(got) != 0 {
		t.Errorf("after stop, still reporting %d instruments", len(got))
	}
}

func TestObserveConsumerReportsLagAndExtraGauges(t *testing.T) {
	tel := newTelemetry(t)
	c := idleConsumer(t)
	phase := rmqotel.Gauge{
		Name: "rmqkit.example.phase", Unit: "1", Description: "test gauge",
		Observe: func(_ context.Context, c *consumer.Consumer) ([]rmqotel.Observation, error) {
			return []rmqotel.Observation{{Value: 2, Attributes: []attribute.KeyValue{attribute.String("messaging.destination.name", "orders")}}}, nil
		},
	}
	lagErr := errors.New("broker down")
	fail := false
	lag := func(context.Context) (map[string]int64, error) {
		if fail {
			return nil, lagErr
		}
		// refunds has no figures yet: no series, and no error.
		return map[string]int64{"orders": 40}, fmt.Errorf("lag: %w for refunds", consumer.ErrNoLag)
	}
	stop, err := rmqotel.ObserveConsumer(c, rmqotel.WithMeterProvider(tel.mp), rmqotel.WithLagFunc(lag), rmqotel.WithGauges(phase))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	m := tel.metrics(t)
	if got := gaugeValues(t, "billing", m["rmqkit.consumer.lag"]); got["orders"] != 40 || len(got) != 1 {
		t.Errorf("lag = %v, want orders 40 only", got)
	}
	if got := gaugeValues(t, "billing", m["rmqkit.example.phase"]); got["orders"] != 2 {
		t.Errorf("extra gauge = %v, want orders 2", got)
	}
	// A failing LagFunc is reported, and hides neither the pool gauges nor
	// the other gauges.
	fail = true
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); !errors.Is(err, lagErr) {
		t.Errorf("collect error = %v, want the LagFunc's", err)
	}
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "rmqkit.pool.capacity" {
				found = gaugeValues(t, "billing", m)["orders"] == 7
			}
		}
	}
	if !found {
		t.Errorf("pool capacity missing from a collection whose LagFunc failed: %+v", rm.ScopeMetrics)
	}
}

func TestObserveConsumerRejectsBadArguments(t *testing.T) {
	if _, err := rmqotel.ObserveConsumer(nil); !errors.Is(err, rmqotel.ErrNilConsumer) {
		t.Errorf("nil consumer: err = %v, want ErrNilConsumer", err)
	}
	if _, err := rmqotel.ObserveConsumer(idleConsumer(t), rmqotel.WithGauges(rmqotel.Gauge{Name: "x"})); err == nil {
		t.Error("gauge without Observe accepted")
	}
}

func TestObserveConsumerReportsTheAdaptiveEstimateAndReason(t *testing.T) {
	tel := newTelemetry(t)
	c := idleConsumer(t)
	if err := c.Subscribe("adaptive", consumer.All, ok, consumer.WithAdaptivePool(consumer.Adaptive{})); err != nil {
		t.Fatal(err)
	}
	stop, err := rmqotel.ObserveConsumer(c, rmqotel.WithMeterProvider(tel.mp), rmqotel.WithLagFunc(nil)) // no broker here
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stop() }()
	m := tel.metrics(t)["rmqkit.pool.adaptive.estimate"]
	g, isGauge := m.Data.(metricdata.Gauge[float64])
	if !isGauge || len(g.DataPoints) != 1 || m.Unit != "{worker}" {
		t.Fatalf("rmqkit.pool.adaptive.estimate = %+v, want one float gauge point in {worker}", m)
	}
	attrs := g.DataPoints[0].Attributes
	topic, _ := attrs.Value("messaging.destination.name")
	reason, _ := attrs.Value(rmqotel.AdaptiveReasonKey)
	if topic.AsString() != "adaptive" || reason.AsString() != "start" {
		t.Fatalf("point attributes %v: want the adaptive subscription, reason start", attrs.ToSlice())
	}
}
