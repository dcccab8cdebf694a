package config

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/rmqkit/rmqkit/consumer"
)

// File drives the consumer being built from the configuration document at
// path, live: one option from a file to a running consumer.
//
//	c, err := consumer.New("orders", consumer.WithNameServer(ns), config.File("rmqkit.yaml"))
//	err = c.Subscribe("orders-created", consumer.All, handle) // the file's settings for the topic apply here
//	err = c.Start(ctx)                                       // the whole file applies, then changes follow live
//
// New reads and validates the file: one that is missing, invalid or names
// another group fails New. Subscribe takes the file's start-only and live
// settings for its topic (poolSize, rate, orderly, keyOrdered, batchSize,
// maxRetries, adaptivePool). Start applies the whole document as Apply does
// (the group and process limits; a topic the consumer does not subscribe to
// fails Start) and then follows the file as Watch does, with opts; Stop
// stops following it first.
//
// What wins: the file, for every key it sets, over what the code set with
// options, at Subscribe and Start and on every change (each value the file
// replaces at Subscribe is logged). A key the file leaves out keeps the
// code's value, and no later change of the file touches it.
//
// WatcherOf returns the Watcher once the consumer has started, for its
// Stats, Current document and Apply.
func File(path string, opts ...Option) consumer.Option {
	return consumer.WithPlugin(func(c *consumer.Consumer) (consumer.Plugin, error) {
		p := &filePlugin{path: path, opts: opts}
		return p, p.attach(c)
	})
}

// filePlugin is File's consumer.Plugin.
type filePlugin struct {
	path string
	opts []Option
	c    *consumer.Consumer
	doc  *Document               // as read by New
	w    atomic.Pointer[Watcher] // from Start on
}

func (p *filePlugin) attach(c *consumer.Consumer) error {
	doc, err := Load(p.path)
	if err != nil {
		return err
	}
	if base := c.Settings().BaseGroup; doc.Group != base {
		err := &FieldError{Field: "group", Line: doc.line("group"), Msg: fmt.Sprintf("%q is not the consumer's group %q", doc.Group, base)}
		return fmt.Errorf("%s: %w", p.path, err)
	}
	p.c, p.doc = c, doc
	return nil
}

func (p *filePlugin) SubscribeOptions(topic string) ([]consumer.SubscribeOption, error) {
	s, ok := p.doc.Subscriptions[topic]
	if !ok {
		return nil, nil
	}
	return subscribeOptions(s), nil
}

func (p *filePlugin) Start(context.Context) error {
	w, err := Watch(p.path, p.c, p.opts...)
	if err != nil {
		return err
	}
	p.w.Store(w)
	return nil
}

func (p *filePlugin) Stop(context.Context) {
	if w := p.w.Load(); w != nil {
		_ = w.Close()
	}
}

// WatcherOf returns the Watcher of c's File, if c was built with one and
// has started; after Stop it is the stopped Watcher, with its last Stats.
func WatcherOf(c *consumer.Consumer) (*Watcher, bool) {
	for _, pl := range c.Plugins() {
		if fp, ok := pl.(*filePlugin); ok {
			if w := fp.w.Load(); w != nil {
				return w, true
			}
		}
	}
	return nil, false
}
