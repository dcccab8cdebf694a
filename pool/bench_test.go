package pool_test

import (
	"context"
	"testing"

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
