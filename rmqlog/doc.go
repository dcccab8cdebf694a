// Package rmqlog routes the logging of github.com/apache/rocketmq-client-go/v2
// (its package rlog) into log/slog.
//
// # Why it exists
//
// The RocketMQ client does not take a logger per client. It logs through a
// package-global rlog.Logger whose default is a logrus logger at Info level
// writing to stderr: noisy, unstructured relative to the rest of an
// application, and — worse — its warning and error records carry whole
// messages in their fields. Consume failures log the []*primitive.MessageExt
// batch under "messages"/"message", the transactional producer logs the
// *primitive.Message under "message", and the message types' String methods
// print the body and the properties map verbatim. Message bodies and
// properties are application data (often personal data) and do not belong in
// logs.
//
// New builds an rlog.Logger that forwards to a *slog.Logger, drops records
// below a minimum level (Warn by default), tags every record with
// component=rocketmq-client, and sanitises fields so that bodies and
// properties never reach the handler (see New for the exact rules).
//
// # Global state
//
// rlog keeps one logger for the whole process, so Install affects every
// RocketMQ client in the process, including clients created by other
// libraries. This package is the single, documented place where rmqkit
// touches that global, and it only does so when the application calls
// Install; nothing in rmqkit installs a logger implicitly. rmqlog itself holds
// no package-level mutable state: all state lives in the value returned by
// New.
package rmqlog
