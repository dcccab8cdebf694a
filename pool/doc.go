// Package pool provides named, isolated worker pools whose size can be changed
// while they run.
//
// A Pool bounds how many tasks run at once. Callers hand it a task with Do,
// which waits for a free worker under a context, runs the task on a worker of
// an ants pool (github.com/panjf2000/ants/v2), and returns the task's result.
// A panicking task is turned into a *PanicError; the pool stays usable.
//
// A caller with a group of tasks (a consumer callback's messages) hands
// them to Lanes: a worker that finishes one takes the next itself, after
// its gate, so that the group costs a few hand-offs between goroutines
// instead of one per task, within the same bounds.
//
// Resize changes the bound at run time: tasks already running finish, and the
// new size applies to the tasks admitted after the call. Stats reports cheap
// counters (capacity, running, waiting, completed, failed, panicked).
//
// rmqkit's consumer gives each subscription a pool of its own, so a slow
// subscription can exhaust only its own workers; sharing one named pool
// between subscriptions is opt-in.
package pool
