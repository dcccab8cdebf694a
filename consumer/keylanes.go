package consumer

import "sync"

// keyLanes runs tasks in lanes, one lane per key: the tasks of a key run one
// at a time, in the order they were added; tasks of different keys run at
// once, each lane on a goroutine of its own (the tasks themselves wait for
// a worker of the subscription's pool, which bounds how many run). A task
// with the empty key belongs to no lane and starts at once.
//
// A lane exists only while it has tasks: the goroutine that drains it
// deletes it when it runs out, so the state is bounded by the tasks added
// and not yet finished, whatever the number of keys ever seen.
//
// keyLanes holds no reference to messages or the client: it is the pure
// scheduling model that keylanes_test.go checks under the race detector.
type keyLanes struct {
	mu    sync.Mutex
	lanes map[string]*lane
}

// lane is the FIFO of one key's tasks; tasks[0] is running or about to.
type lane struct {
	key   string
	tasks []func()
}

func newKeyLanes() *keyLanes { return &keyLanes{lanes: make(map[string]*lane)} }

// add appends the tasks, tasks[i] to the lane of keys[i], in one step: a
// callback's tasks are queued behind every task added before and ahead of
// every task added after, so no two callbacks wait on each other in a
// cycle.
func (l *keyLanes) add(keys []string, tasks []func()) {
	var drain []*lane
	l.mu.Lock()
	for i, k := range keys {
		if k == "" {
			go tasks[i]()
			continue
		}
		ln, ok := l.lanes[k]
		if !ok {
			ln = &lane{key: k}
			l.lanes[k] = ln
			drain = append(drain, ln)
		}
		ln.tasks = append(ln.tasks, tasks[i])
	}
	l.mu.Unlock()
	for _, ln := range drain {
		go l.drain(ln)
	}
}

// drain runs ln's tasks until it is empty, then deletes it.
func (l *keyLanes) drain(ln *lane) {
	for {
		l.mu.Lock()
		task := ln.tasks[0]
		l.mu.Unlock()
		task()
		l.mu.Lock()
		ln.tasks[0] = nil
		ln.tasks = ln.tasks[1:]
		if len(ln.tasks) == 0 {
			delete(l.lanes, ln.key)
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
	}
}

// len returns the number of lanes: keys with a task waiting or running.
func (l *keyLanes) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lanes)
}
