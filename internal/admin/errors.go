package admin

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is.
var (
	// ErrNotFound reports that the topic, queue offset or subscription group
	// asked for does not exist (response codes TOPIC_NOT_EXIST,
	// QUERY_NOT_FOUND, SUBSCRIPTION_GROUP_NOT_EXIST), or that no broker serves
	// what was asked for.
	ErrNotFound = errors.New("not found")
	// ErrConsumerNotOnline reports that no consumer of the group is connected
	// to the broker (response code CONSUMER_NOT_ONLINE).
	ErrConsumerNotOnline = errors.New("consumer group not online")
	// ErrBrokerResponse matches every *ResponseError: a name server or broker
	// answered with a code other than SUCCESS.
	ErrBrokerResponse = errors.New("error response")
	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("admin client closed")
)

// Response codes of the remoting protocol (ResponseCode.java and
// RemotingSysResponseCode.java of Apache RocketMQ) that this package tells
// apart.
const (
	codeSuccess                   = 0
	codeSystemError               = 1
	codeTopicNotExist             = 17
	codeQueryNotFound             = 22
	codeSubscriptionGroupNotExist = 26
	codeConsumerNotOnline         = 206
)

// ResponseError is a response whose code is not SUCCESS. It matches
// ErrBrokerResponse, and ErrNotFound or ErrConsumerNotOnline where its code
// means that.
type ResponseError struct {
	Addr        string // address of the name server or broker that answered
	RequestCode int    // the request code, e.g. 17 for UPDATE_AND_CREATE_TOPIC
	Code        int    // the response code, e.g. 29 for INVALID_PARAMETER
	Remark      string // the remark of the response, often the reason
}

// Error returns the request, the address, the response code and the remark.
func (e *ResponseError) Error() string {
	msg := fmt.Sprintf("request %d to %s: response code %d", e.RequestCode, e.Addr, e.Code)
	if e.Remark != "" {
		msg += ": " + e.Remark
	}
	return msg
}

// Is reports whether target is ErrBrokerResponse, or the sentinel error that
// the response code stands for.
func (e *ResponseError) Is(target error) bool {
	switch target {
	case ErrBrokerResponse:
		return true
	case ErrNotFound:
		return e.Code == codeTopicNotExist || e.Code == codeQueryNotFound || e.Code == codeSubscriptionGroupNotExist
	case ErrConsumerNotOnline:
		return e.Code == codeConsumerNotOnline
	}
	return false
}

// wrap prefixes *err, if not nil, with "admin: " and the formatted context.
// Exported methods wrap their errors so; unexported helpers return theirs
// without the prefix.
func wrap(err *error, format string, args ...any) {
	if *err != nil {
		*err = fmt.Errorf("admin: %s: %w", fmt.Sprintf(format, args...), *err)
	}
}
