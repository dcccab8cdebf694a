package pool_test

import (
	"context"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/pool"
)

// BenchmarkDo measures one task handed to a worker and its result returned.
func BenchmarkDo(b *testing.B) {
	p, err := pool.New("bench", 8)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	task := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Do(ctx, task); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartBatch starts 32 no-op tasks, then waits for each: the
// consumer's fan-out of one callback.
func BenchmarkStartBatch(b *testing.B) {
	p, err := pool.New("bench", 20)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	task := func(context.Context) error { return nil }
	var sts [32]pool.Started
	b.ReportAllocs()
	for b.Loop() {
		for i := range sts {
			if sts[i], err = p.Start(context.Background(), nil, task); err != nil {
				b.Fatal(err)
			}
		}
		for i := range sts {
			if err := sts[i].Wait(time.Minute, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sts)), "ns/task")
}
