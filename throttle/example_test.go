package throttle_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/rmqkit/rmqkit/throttle"
)

func ExampleLimiter_Set() {
	lim, err := throttle.New(throttle.Limit{Rate: 200})
	if err != nil {
		panic(err)
	}
	fmt.Println(lim.Limit())

	// A bad value is rejected and the old limit stays in force.
	err = lim.Set(throttle.Limit{Rate: -5})
	fmt.Println(errors.Is(err, throttle.ErrInvalidLimit), lim.Limit())

	// Live change; callers already waiting follow the new limit at once.
	_ = lim.Set(throttle.Limit{Rate: 1000, Burst: 50})
	fmt.Println(lim.Limit())

	// Rate 0 lifts the limit.
	_ = lim.Set(throttle.Limit{})
	fmt.Println(lim.Limit())
	// Output:
	// 200/s burst 20
	// true 200/s burst 20
	// 1000/s burst 50
	// unlimited
}

func ExampleWaitAll() {
	process, _ := throttle.New(throttle.Limit{Rate: 5000}) // shared by every consumer of the process
	group, _ := throttle.New(throttle.Limit{Rate: 1000})
	sub, _ := throttle.New(throttle.Limit{Rate: 200})

	ctx := context.Background()
	for range 3 {
		// The narrowest level first.
		if err := throttle.WaitAll(ctx, sub, group, process); err != nil {
			return // ctx ended
		}
		// handle one message
	}
	fmt.Println(sub.Stats().Admitted, group.Stats().Admitted, process.Stats().Admitted)
	// Output: 3 3 3
}
