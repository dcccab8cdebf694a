package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	rmqadmin "github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

const (
	testAccessKey = "rmqkit-ak"
	testSecretKey = "rmqkit-sk-12345678"
)

func TestSignatureMatchesKnownVectors(t *testing.T) {
	// Computed with
	//   printf '%s' CONTENT | openssl dgst -sha1 -hmac rmqkit-sk-12345678 -binary | base64
	// where CONTENT is the values of the sorted fields ("AccessKey" sorts
	// before lower-case keys), then the body.
	for _, tc := range []struct {
		name string
		ext  map[string]string
		body string
		want string
	}{
		{
			name: "fields only", // CONTENT = rmqkit-akadmin_groupadmin_topic
			ext:  map[string]string{"topic": "admin_topic", "AccessKey": testAccessKey, "consumerGroup": "admin_group"},
			want: "aVM36YmMrkxKe/B28s/NbpSUT2I=",
		},
		{
			name: "fields and body, signature field ignored", // CONTENT = rmqkit-ak0admin_topic{"x":1}
			ext:  map[string]string{"queueId": "0", "topic": "admin_topic", "AccessKey": testAccessKey, "Signature": "old"},
			body: `{"x":1}`,
			want: "ypotM01amZOYYwFzzzmkSXZF9QQ=",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := signature(tc.ext, []byte(tc.body), testSecretKey); got != tc.want {
				t.Errorf("signature = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestSignatureMatchesRocketmqClientGo lets rocketmq-client-go's admin sign a
// route request to a fake name server, and recomputes the signature of the
// fields it sent with this package's function.
func TestSignatureMatchesRocketmqClientGo(t *testing.T) {
	srv := newFakeServer(t, func(*command) *command {
		return &command{Code: codeTopicNotExist, Remark: "no route"}
	})
	a, err := rmqadmin.NewAdmin(
		rmqadmin.WithResolver(primitive.NewPassthroughResolver([]string{srv.addr()})),
		rmqadmin.WithCredentials(primitive.Credentials{AccessKey: testAccessKey, SecretKey: testSecretKey}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.FetchPublishMessageQueues(context.Background(), "admin_signed_topic") // fails: no route

	reqs := srv.received()
	if len(reqs) == 0 {
		t.Fatal("rocketmq-client-go sent no request")
	}
	for _, req := range reqs {
		ext := req.ExtFields
		if ext[fieldAccessKey] != testAccessKey || ext[fieldSignature] == "" || ext["topic"] != "admin_signed_topic" {
			t.Fatalf("request %d has ext fields %v, want topic, AccessKey and Signature", req.Code, ext)
		}
		if got := signature(ext, req.Body, testSecretKey); got != ext[fieldSignature] {
			t.Errorf("signature of %v = %s, rocketmq-client-go sent %s", ext, got, ext[fieldSignature])
		}
	}
}

func TestSignedRequestsCarryAccessKeyAndSignature(t *testing.T) {
	srv := newFakeServer(t, func(*command) *command { return &command{Code: codeSuccess} })
	c, err := New([]string{srv.addr()}, WithCredentials(testAccessKey, testSecretKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := []byte(`{"groupName":"g"}`)
	if _, err := c.invoke(context.Background(), srv.addr(), reqUpdateAndCreateSubscription, map[string]string{"x": "1"}, body); err != nil {
		t.Fatal(err)
	}
	req := srv.received()[0]
	if req.ExtFields[fieldAccessKey] != testAccessKey || req.ExtFields["x"] != "1" {
		t.Fatalf("ext fields %v", req.ExtFields)
	}
	if want := signature(req.ExtFields, body, testSecretKey); req.ExtFields[fieldSignature] != want {
		t.Errorf("Signature %q, want %q", req.ExtFields[fieldSignature], want)
	}
	for k, v := range req.ExtFields {
		if strings.Contains(v, testSecretKey) {
			t.Errorf("ext field %s carries the secret key", k)
		}
	}
}

func TestTheSecretKeyIsInNoErrorOrFormattedClient(t *testing.T) {
	srv := newFakeServer(t, func(req *command) *command {
		if req.ExtFields["n"] == "silent" {
			return nil
		}
		// A broker that rejects the signature.
		return &command{Code: 16, Remark: "check signature failed, accessKey=" + req.ExtFields[fieldAccessKey]}
	})
	c, err := New([]string{srv.addr()}, WithCredentials(testAccessKey, testSecretKey), WithTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var errs []error
	_, err = c.invoke(ctx, srv.addr(), 1, nil, nil)
	errs = append(errs, err)
	_, err = c.invoke(ctx, srv.addr(), 1, map[string]string{"n": "silent"}, nil)
	errs = append(errs, err)
	_, err = c.invoke(ctx, "127.0.0.1:1", 1, nil, nil) // nothing listens
	errs = append(errs, err)
	errs = append(errs, c.CreateTopic(ctx, "t", 1, false))
	_, err = New([]string{"127.0.0.1:9876"}, WithCredentials("", testSecretKey))
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("want an error")
		}
		if strings.Contains(err.Error(), testSecretKey) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), testSecretKey) {
			t.Errorf("error %q contains the secret key", err)
		}
	}
	var re *ResponseError
	if !errors.As(errs[0], &re) || re.Code != 16 {
		t.Errorf("rejected request: %v, want response code 16", errs[0])
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testSecretKey) {
		t.Errorf("formatted client contains the secret key: %s", s)
	}
}
