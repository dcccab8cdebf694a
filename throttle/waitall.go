package throttle

import "context"

// WaitAll is shorthand for WaitAllN(ctx, 1, limiters...).
func WaitAll(ctx context.Context, limiters ...*Limiter) error {
	return WaitAllN(ctx, 1, limiters...)
}

// WaitAllN blocks until n messages have passed every limiter in limiters,
// or ctx ends; nil and unlimited limiters are skipped at the cost of an
// atomic load each. A message passes every level that applies to it, such
// as its subscription's, its consumer group's and its process's.
//
// The limiters are waited on one after the other, in the order given. Give
// the narrowest first (subscription, then group, then process): messages
// held back by a narrow limit then take no tokens from a wider limiter
// shared with others. Tokens already taken when ctx ends are not given
// back. It returns ctx.Err(), unwrapped, if ctx ends while it waits.
func WaitAllN(ctx context.Context, n int, limiters ...*Limiter) error {
	for _, l := range limiters {
		if err := l.WaitN(ctx, n); err != nil {
			return err
		}
	}
	return nil
}
