// Package admin is a small administration client for Apache RocketMQ that
// speaks the remoting protocol directly over TCP.
//
// It covers what rmqkit needs and rocketmq-client-go's admin package lacks:
// cluster and topic routes, topic creation that checks the broker's answer,
// consumer connections, consume stats and lag, subscription groups and queue
// offsets. It depends on the standard library only.
//
// A Client keeps one TCP connection per name server or broker address and
// multiplexes concurrent requests over it by their opaque number; it is safe
// for concurrent use. Every call takes a context first; each request is also
// bounded by the timeout of WithTimeout (3 s by default).
//
// Brokers answer with fastjson bodies that are not always standard JSON (map
// keys that are numbers or whole objects, such as the message queues of
// ConsumeStats); the package rewrites them into standard JSON before decoding.
//
// With WithCredentials, every request is signed like the RocketMQ ACL client
// hook does (AccessKey and Signature ext fields, HMAC-SHA1 over the sorted ext
// field values followed by the body), the scheme the 4.x plain ACL and the
// 5.x authentication of the broker check.
package admin
