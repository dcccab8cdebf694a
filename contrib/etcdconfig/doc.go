// Package etcdconfig makes an etcd key a configuration source (config.Source)
// of package config: the key holds the same YAML document as a
// configuration file, and config.WatchSource applies it to a consumer and
// follows its changes.
//
//	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"etcd:2379"}})
//	src, err := etcdconfig.New(cli, "/services/orders/rmqkit.yaml")
//	w, err := config.WatchSource(src, c)
//
// It is a module of its own, so that rmqkit's core module does not depend on
// etcd.
//
// # Guarantees
//
// The key's value when WatchSource starts is the first document; a missing
// key makes WatchSource fail. Then every new value is delivered, once:
// writes of an unchanged value are skipped. A value that does not parse or
// does not fit the consumer is rejected by package config and the last good
// document stays in force; a deleted key is reported and changes nothing.
//
// When the watch breaks (etcd restarts, the connection drops, the cluster
// loses its leader) the client resumes it from the last revision seen, so
// no version is missed. When those revisions were compacted meanwhile, the
// watch cannot resume: the source reads the key again and delivers its
// current value if it changed, then watches from there. Intermediate
// versions that were compacted away are not delivered; the document is
// declarative, so the latest one is all that matters. Each break is
// reported as an error wrapping config.ErrWatch.
package etcdconfig
