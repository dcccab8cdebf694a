package broadcast

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/admin"
	"github.com/rmqkit/rmqkit/throttle"
)

// withFakeAdmin makes New use adm instead of connecting to a broker.
func withFakeAdmin(adm *fakeAdmin) Option {
	return func(c *config) { c.newAdmin = func(*config) (adminAPI, error) { return adm, nil } }
}

// newTestConsumer returns a broadcast consumer of base group "orders",
// identity web-0, on a fake admin client, and its Instance.
func newTestConsumer(t *testing.T, adm *fakeAdmin, opts ...Option) (*consumer.Consumer, *Instance) {
	return newTestConsumerIn(t, adm, "", opts...)
}

func newTestConsumerIn(t *testing.T, adm *fakeAdmin, namespace string, opts ...Option) (*consumer.Consumer, *Instance) {
	t.Helper()
	c, err := consumer.New("orders",
		consumer.WithNameServer("127.0.0.1:1"),
		consumer.WithLogger(slog.New(slog.DiscardHandler)),
		consumer.WithNamespace(namespace),
		Mode(append([]Option{WithIdentity("web-0"), withFakeAdmin(adm)}, opts...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	i, ok := InstanceOf(c)
	if !ok {
		t.Fatal("InstanceOf a broadcast consumer: false")
	}
	return c, i
}

func nop(context.Context, *consumer.Message) error { return nil }

func TestModeMakesTheConsumerJoinTheInstanceGroup(t *testing.T) {
	c, i := newTestConsumer(t, newFakeAdmin())
	if i.Identity() != "web_0" || i.Group() != "orders-web_0" || i.BaseGroup() != "orders" {
		t.Fatalf("identity %q group %q base %q", i.Identity(), i.Group(), i.BaseGroup())
	}
	if c.Group() != "orders-web_0" || c.Settings().Group != "orders-web_0" {
		t.Fatalf("the consumer's group is %q", c.Group())
	}
	_, ns := newTestConsumerIn(t, newFakeAdmin(), "prod")
	if ns.Group() != "orders-web_0" || ns.bgroup != "prod%orders-web_0" {
		t.Fatalf("with namespace: group %q, broker group %q", ns.Group(), ns.bgroup)
	}
	plain, err := consumer.New("orders", consumer.WithNameServer("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := InstanceOf(plain); ok {
		t.Fatal("InstanceOf a consumer without the mode: true")
	}
}

func TestModeValidatesItsArguments(t *testing.T) {
	adm := newFakeAdmin()
	for name, tc := range map[string]struct {
		base string
		opts []consumer.Option
	}{
		"no name server": {"orders", []consumer.Option{Mode(WithIdentity("a"), withFakeAdmin(adm))}},
		"bad base group": {"or ders", []consumer.Option{consumer.WithNameServer("x:1"), Mode(WithIdentity("a"), withFakeAdmin(adm))}},
		"empty identity": {"orders", []consumer.Option{consumer.WithNameServer("x:1"), Mode(WithIdentity(""), withFakeAdmin(adm))}},
		"negative wait":  {"orders", []consumer.Option{consumer.WithNameServer("x:1"), Mode(WithIdentity("a"), WithIdentityWait(-1), withFakeAdmin(adm))}},
		"tiny ttl":       {"orders", []consumer.Option{consumer.WithNameServer("x:1"), Mode(WithIdentity("a"), WithGarbageCollection(time.Millisecond), withFakeAdmin(adm))}},
		"interval alone": {"orders", []consumer.Option{consumer.WithNameServer("x:1"), Mode(WithIdentity("a"), WithGarbageCollectionInterval(time.Minute), withFakeAdmin(adm))}},
		"two modes":      {"orders", []consumer.Option{consumer.WithNameServer("x:1"), Mode(WithIdentity("a"), withFakeAdmin(adm)), Mode(WithIdentity("b"), withFakeAdmin(adm))}},
	} {
		if _, err := consumer.New(tc.base, tc.opts...); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
	// One Mode value is one instance: a second consumer cannot share it.
	m := Mode(WithIdentity("a"), withFakeAdmin(adm))
	c, err := consumer.New("orders", consumer.WithNameServer("x:1"), m)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	if _, err := consumer.New("orders", consumer.WithNameServer("x:1"), m); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("a Mode value given to a second consumer: err = %v, want ErrInvalidOption", err)
	}
}

// A group quota is shared by a group's instances; each broadcast instance
// is a group of its own, so the consumer refuses one, in New and live, and
// a group rate still caps the instance.
func TestAGroupQuotaHasNoMeaningInBroadcast(t *testing.T) {
	adm := newFakeAdmin()
	quota := throttle.Limit{Rate: 100}
	_, err := consumer.New("orders", consumer.WithNameServer("x:1"), consumer.WithGroupQuota(quota), Mode(WithIdentity("a"), withFakeAdmin(adm)))
	if !errors.Is(err, consumer.ErrNotInMode) || !strings.Contains(err.Error(), "WithGroupQuota") {
		t.Fatalf("New with a group quota = %v, want ErrNotInMode naming WithGroupQuota", err)
	}
	c, err := consumer.New("orders", consumer.WithNameServer("x:1"), Mode(WithIdentity("b"), withFakeAdmin(adm)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	if err := c.SetGroupQuota(quota); !errors.Is(err, consumer.ErrNotInMode) {
		t.Fatalf("SetGroupQuota = %v, want ErrNotInMode", err)
	}
	if err := c.SetGroupRate(quota); err != nil || c.Settings().GroupLimit != quota || c.Settings().GroupQuota {
		t.Fatalf("SetGroupRate = %v, settings %+v", err, c.Settings())
	}
}

func TestStartRefusesAnIdentityInUse(t *testing.T) {
	adm := newFakeAdmin()
	adm.setConns("orders-web_0", "10.0.0.9@rmqkit-web_0-other")
	c, _ := newTestConsumer(t, adm, WithIdentityWait(0))
	if err := c.Subscribe("T", consumer.All, nop); err != nil {
		t.Fatal(err)
	}
	err := c.Start(context.Background())
	if !errors.Is(err, ErrIdentityInUse) {
		t.Fatalf("Start = %v, want ErrIdentityInUse", err)
	}
	for _, want := range []string{`"web_0"`, "10.0.0.9@rmqkit-web_0-other", "10.0.0.9:4242"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if len(adm.created) != 0 || len(adm.offsets) != 0 {
		t.Errorf("a refused Start changed the broker: created %v, offsets %v", adm.created, adm.offsets)
	}
}

func TestStartWithoutSubscriptionsIsInvalid(t *testing.T) {
	c, _ := newTestConsumer(t, newFakeAdmin())
	if err := c.Start(context.Background()); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("Start = %v, want ErrInvalidOption", err)
	}
}

func TestOwnClientDoesNotCountAsAnother(t *testing.T) {
	adm := newFakeAdmin()
	_, c := newTestConsumer(t, adm)
	adm.setConns("orders-web_0", "10.0.0.1@"+c.instance)
	if err := c.waitAlone(context.Background()); err != nil {
		t.Fatalf("waitAlone = %v with only this instance's own client connected", err)
	}
}

func TestClientsTheBrokerListsButThatAreGoneDoNotCount(t *testing.T) {
	adm := newFakeAdmin()
	_, c := newTestConsumer(t, adm, WithIdentityWait(0))
	adm.setConns("orders-web_0", "10.0.0.1@closed", "10.0.0.2@shut-down", "10.0.0.3@java", "10.0.0.4@silent", "10.0.0.5@alive")
	re := func(remark string) error { return &admin.ResponseError{Code: 1, Remark: remark} }
	adm.runningInfo["10.0.0.1@closed"] = re("invoke consumer <g> <10.0.0.1@closed> Exception: org.apache.rocketmq.remoting.exception.RemotingSendRequestException: send request to </10.0.0.1:1> failed")
	adm.runningInfo["10.0.0.2@shut-down"] = re("Can't find specified client instance of: 10.0.0.2@shut-down")
	adm.runningInfo["10.0.0.3@java"] = re("The Consumer Group <g> not exist in this consumer")
	adm.runningInfo["10.0.0.4@silent"] = re("invoke consumer <g> <10.0.0.4@silent> Timeout: 5000")
	others, err := c.otherClients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range others {
		ids = append(ids, o.ClientID)
	}
	if strings.Join(ids, ",") != "10.0.0.4@silent,10.0.0.5@alive" {
		t.Fatalf("clients counted as alive: %v; want the silent one and the alive one", ids)
	}
}

func TestIdentityWaitLetsThePreviousIncarnationGo(t *testing.T) {
	old := []admin.Connection{{ClientID: "10.0.0.9@old", ClientAddr: "10.0.0.9:1"}}
	adm := newFakeAdmin()
	adm.connSeq["orders-web_0"] = [][]admin.Connection{old, old, nil}
	_, c := newTestConsumer(t, adm, WithIdentityWait(10*time.Second))
	began := time.Now()
	if err := c.waitAlone(context.Background()); err != nil {
		t.Fatalf("waitAlone = %v, want nil once the old client is gone", err)
	}
	if d := time.Since(began); d < 1500*time.Millisecond || d > 5*time.Second {
		t.Errorf("waited %v, want about 2 polls of 1s", d)
	}

	adm.connSeq["orders-web_0"] = [][]admin.Connection{old}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.waitAlone(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitAlone = %v, want the context's error", err)
	}
}

func TestEnsureGroupCreatesTheMarkedGroupOnce(t *testing.T) {
	adm := newFakeAdmin()
	_, c := newTestConsumer(t, adm)
	for range 2 {
		if err := c.ensureGroup(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(adm.created) != 1 || adm.groups["orders-web_0"].ConsumeBroadcastEnable {
		t.Fatalf("created %v (%+v), want one marked group", adm.created, adm.groups["orders-web_0"])
	}

	// A group the broker auto-created gets the mark, keeping its settings.
	adm2 := newFakeAdmin()
	adm2.addGroup("orders-web_0", false)
	_, c2 := newTestConsumer(t, adm2)
	if err := c2.ensureGroup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if adm2.createdOpts["orders-web_0"] != 3 || adm2.groups["orders-web_0"].ConsumeBroadcastEnable {
		t.Fatalf("unmarked group: %d options given, config %+v", adm2.createdOpts["orders-web_0"], adm2.groups["orders-web_0"])
	}
}

func TestInitOffsetsSetsOnlyQueuesWithoutOffsets(t *testing.T) {
	adm := newFakeAdmin()
	adm.addGroup("g", true)
	adm.routes["T"] = admin.TopicRoute{Topic: "T", Queues: []admin.QueueData{{BrokerName: "b", ReadQueues: 3, WriteQueues: 3}}}
	q := func(i int) admin.MessageQueue { return admin.MessageQueue{Topic: "T", BrokerName: "b", QueueID: i} }
	adm.offsets[offsetKey("g", q(0))] = 5 // a restart: committed before
	adm.max[q(1)], adm.max[q(2)] = 70, 90
	adm.atTime[q(1)], adm.atTime[q(2)] = 11, 12

	n, err := initOffsets(context.Background(), adm, "g", []string{"T"}, time.Time{})
	if err != nil || n != 2 {
		t.Fatalf("initOffsets = %d, %v; want 2 queues set", n, err)
	}
	want := map[int]int64{0: 5, 1: 70, 2: 90}
	for i, off := range want {
		if got := adm.offsets[offsetKey("g", q(i))]; got != off {
			t.Errorf("queue %d: offset %d, want %d", i, got, off)
		}
	}

	// With a start time, a new group starts at the messages stored since.
	n, err = initOffsets(context.Background(), adm, "g2", []string{"T"}, time.Unix(1, 0))
	if err == nil {
		t.Fatalf("initOffsets of a group the broker does not have = %d, nil; want an error", n)
	}
	adm.addGroup("g2", true)
	if _, err := initOffsets(context.Background(), adm, "g2", []string{"T"}, time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if got := adm.offsets[offsetKey("g2", q(2))]; got != 12 {
		t.Errorf("queue 2 of g2: offset %d, want 12 (from the start time)", got)
	}
	if _, err := initOffsets(context.Background(), adm, "g", []string{"missing"}, time.Time{}); !errors.Is(err, admin.ErrNotFound) {
		t.Errorf("unknown topic: err = %v, want ErrNotFound", err)
	}
}

func TestStopWithoutStartIsSafe(t *testing.T) {
	adm := newFakeAdmin()
	c, _ := newTestConsumer(t, adm)
	for range 2 {
		if err := c.Stop(context.Background()); err != nil {
			t.Fatalf("Stop = %v", err)
		}
	}
	if err := c.Start(context.Background()); !errors.Is(err, consumer.ErrStopped) {
		t.Fatalf("Start after Stop = %v, want consumer.ErrStopped", err)
	}
	if err := c.Subscribe("T", consumer.All, nop); !errors.Is(err, consumer.ErrStarted) {
		t.Fatalf("Subscribe after Stop = %v, want consumer.ErrStarted", err)
	}
}
