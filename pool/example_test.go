package pool_test

import (
	"context"
	"fmt"

	"github.com/rmqkit/rmqkit/pool"
)

func ExamplePool_Resize() {
	p, err := pool.New("orders", 2)
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())

	_ = p.Do(context.Background(), func(ctx context.Context) error { return nil })
	if err := p.Resize(16); err != nil {
		panic(err)
	}
	fmt.Println(p.Stats().Capacity, p.Stats().Completed)
	// Output: 16 1
}
