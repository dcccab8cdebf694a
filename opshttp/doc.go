// Package opshttp serves an operator's view of rmqkit consumers on a
// service's admin port: a JSON status document and a small HTML page built
// from it, and, only when the service allows it, live changes of pool sizes
// and rate limits.
//
//	h, err := opshttp.New(
//		opshttp.WithConsumer(c, opshttp.WithWatcher(w)), // w: the consumer's config.Watcher, if any
//		opshttp.WithAuthorizer(authorize),                 // without it the page is read-only
//	)
//	admin.Handle("/rmqkit/", http.StripPrefix("/rmqkit", h))
//
// # Routes
//
// Relative to where the handler is mounted:
//
//	GET  /             the HTML page; it reloads itself every WithRefresh period
//	GET  /status.json  the status document (Status)
//	POST /set          a change (form fields group, topic, poolSize, rate, burst)
//
// The page is plain HTML and CSS with a few lines of inline script (the
// reload pauses while a form field has the focus); it loads nothing else and
// works offline.
//
// # Changes
//
// A change is refused (403) unless the service passed WithAuthorizer and the
// authorizer names who asks. It is turned into a configuration document
// (package config) that manages only the fields given, and goes through the
// same validation as a configuration file: through the consumer's
// config.Watcher when WithWatcher names one, else config.Apply. A rejected
// change changes nothing. Every change is logged with who made it, the old
// and the new value.
//
// What wins: the latest change. A page change stays in force until the
// consumer's configuration source changes (the file is edited, the etcd key
// is written); the watcher then applies the whole new document, and every
// key it manages takes the document's value again, overriding the page.
// Keys the document leaves out keep the page's value. Restarting the
// service applies the document only.
//
// Cross-site form posts are refused: a POST whose Origin names another host,
// or that the browser marks Sec-Fetch-Site: cross-site, gets 403 before the
// authorizer is asked.
package opshttp
