package rmqotel_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rmqkit/rmqkit/broadcast"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/rmqotel"
)

// An Instrument option that contradicts the consumer fails New, naming
// both values: the consumer is the one source of its namespace and model.
func TestInstrumentRefusesOptionsThatContradictTheConsumer(t *testing.T) {
	for name, opts := range map[string][]consumer.Option{
		"namespace":                      {consumer.WithNamespace("prod"), rmqotel.Instrument(rmqotel.WithNamespace("test"))},
		"model":                          {broadcast.Mode(broadcast.WithIdentity("a")), rmqotel.Instrument(rmqotel.WithConsumptionModel(rmqotel.Clustering))},
		"model of a clustering consumer": {rmqotel.Instrument(rmqotel.WithConsumptionModel(rmqotel.Broadcasting))},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := consumer.New("orders", append([]consumer.Option{consumer.WithNameServer("127.0.0.1:1")}, opts...)...)
			if !errors.Is(err, rmqotel.ErrConflict) {
				t.Fatalf("New = %v, want rmqotel.ErrConflict", err)
			}
		})
	}
	// Agreeing options are fine.
	c, err := consumer.New("orders", consumer.WithNameServer("127.0.0.1:1"), consumer.WithNamespace("prod"),
		rmqotel.Instrument(rmqotel.WithNamespace("prod"), rmqotel.WithConsumptionModel(rmqotel.Clustering)))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Stop(context.Background())
}
