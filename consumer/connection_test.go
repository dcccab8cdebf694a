package consumer

import (
	"errors"
	"testing"
)

// One Connection value sets name servers, credentials and namespace, and
// the consumer reports it back; Qualify adds the namespace as the broker
// names things.
func TestWithConnectionSetsTheWholeConnection(t *testing.T) {
	conn := Connection{NameServers: []string{"10.0.0.1:9876"}, AccessKey: "ak", SecretKey: "sk", Namespace: "prod"}
	c, err := New("g", WithConnection(conn))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Connection()
	if got.NameServers[0] != "10.0.0.1:9876" || got.AccessKey != "ak" || got.SecretKey != "sk" || got.Namespace != "prod" {
		t.Fatalf("Connection() = %+v, want %+v", got, conn)
	}
	if q := got.Qualify("orders"); q != "prod%orders" {
		t.Fatalf("Qualify = %q", q)
	}
	if q := (Connection{}).Qualify("orders"); q != "orders" {
		t.Fatalf("Qualify without namespace = %q", q)
	}
}

func TestConnectionValidateNamesWhatIsWrong(t *testing.T) {
	for name, conn := range map[string]Connection{
		"no name server":  {},
		"empty address":   {NameServers: []string{" "}},
		"half credential": {NameServers: []string{"a:1"}, AccessKey: "ak"},
		"bad namespace":   {NameServers: []string{"a:1"}, Namespace: "a%b"},
	} {
		if err := conn.Validate(); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: Validate = %v, want ErrInvalidOption", name, err)
		}
		if _, err := New("g", WithConnection(conn)); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: New = %v, want ErrInvalidOption", name, err)
		}
	}
}
