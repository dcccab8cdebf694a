package rmqotel

// ScopeName is the instrumentation scope name of the tracers and meters this
// package creates.
const ScopeName = "github.com/rmqkit/rmqkit/rmqotel"

// Version is the version of this instrumentation, reported as the
// instrumentation scope version.
const Version = "0.1.0"
