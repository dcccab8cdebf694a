package opshttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/throttle"
)

// maxFormBytes bounds a change request's body.
const maxFormBytes = 64 << 10

// Handler serves the status page, the status document and changes (see the
// package documentation). Create it with New. It is safe for simultaneous
// use by multiple goroutines.
type Handler struct {
	o       options
	byGroup map[string]*entry
	mux     *http.ServeMux

	changeMu sync.Mutex // one change at a time: config.Apply wants a single caller

	lagMu    sync.Mutex
	lagCache map[*entry]lagReading
}

// New returns a Handler for the consumers and migrations given by opts.
// Errors wrap ErrInvalidOption and name the option.
func New(opts ...Option) (*Handler, error) {
	o := options{
		logger:     slog.Default(),
		refresh:    5 * time.Second,
		lagTimeout: 2 * time.Second,
		lagEvery:   2 * time.Second,
		now:        time.Now,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	var errs []error
	for _, e := range o.errs {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidOption, e))
	}
	if o.refresh != 0 && o.refresh < time.Second {
		errs = append(errs, fmt.Errorf("%w: WithRefresh %v is below one second", ErrInvalidOption, o.refresh))
	}
	if o.lagTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%w: WithLagTimeout %v is not positive", ErrInvalidOption, o.lagTimeout))
	}
	if o.lagEvery < 0 {
		errs = append(errs, fmt.Errorf("%w: WithLagInterval %v is negative", ErrInvalidOption, o.lagEvery))
	}
	h := &Handler{o: o, byGroup: make(map[string]*entry), lagCache: make(map[*entry]lagReading)}
	for _, e := range o.entries {
		g := e.c.Group()
		if _, dup := h.byGroup[g]; dup {
			errs = append(errs, fmt.Errorf("%w: WithConsumer: group %q given twice", ErrInvalidOption, g))
		}
		h.byGroup[g] = e
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /status.json", h.status)
	h.mux.HandleFunc("POST /set", h.set)
	return h, nil
}

// ServeHTTP serves the routes of the package documentation.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Change is a change of one subscription's live settings. Nil fields are
// left as they are; Rate and Burst go together as in a configuration
// document (a burst without a rate is rejected).
type Change struct {
	Group    string   // the consumer's group, as Consumer.Group returns it
	Topic    string   // the subscription's topic
	PoolSize *int     // the pool size; pins an adaptive pool
	Rate     *float64 // messages per second; 0 lifts the limit
	Burst    *int     // with Rate; 0 is the default burst
}

// Apply makes ch on behalf of who, through the same validation as a
// configuration document (see the package documentation), and returns the
// settings it changed. The page calls it once the authorizer has named
// who; a program may call it directly. Every change is logged with who. A
// rejected change changes nothing and returns an error wrapping
// config.ErrInvalid (or ErrUnknownGroup).
func (h *Handler) Apply(who string, ch Change) ([]config.Change, error) {
	e, ok := h.byGroup[ch.Group]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownGroup, ch.Group)
	}
	before := e.c.Settings()
	group := before.BaseGroup // configuration names the group given to consumer.New
	if group == "" {
		group = e.c.Group()
	}
	doc := &config.Document{Group: group, Subscriptions: map[string]config.Subscription{
		ch.Topic: {PoolSize: ch.PoolSize, Rate: ch.Rate, Burst: ch.Burst},
	}}
	h.changeMu.Lock()
	before = e.c.Settings() // again, under the lock
	var err error
	switch c := e.c.(type) {
	case *consumer.Consumer:
		if e.watcher != nil {
			err = e.watcher.Apply(doc)
		} else {
			_, err = config.Apply(c, doc)
		}
	case tuner:
		err = applyTuner(c, before, doc, ch)
	default:
		err = fmt.Errorf("%w: group %q: %T has no SetPoolSize and SetRate", config.ErrInvalid, ch.Group, e.c)
	}
	changes := diff(ch.Topic, before, e.c.Settings())
	h.changeMu.Unlock()
	for _, c := range changes {
		h.o.logger.Info("rmqkit ops change", "who", who, "group", ch.Group, "field", c.Field, "old", c.Old, "new", c.New)
	}
	if err != nil {
		h.o.logger.Warn("rmqkit ops change rejected", "who", who, "group", ch.Group, "topic", ch.Topic, "error", err)
	}
	return changes, err
}

// applyTuner applies doc to a Consumer that config.Apply cannot take (not
// a *consumer.Consumer): the document's own validation, the topic check,
// then the setters, which validate again.
func applyTuner(t tuner, have consumer.Settings, doc *config.Document, ch Change) error {
	if err := doc.Validate(); err != nil {
		return err
	}
	if !hasTopic(have, ch.Topic) {
		return &config.FieldError{Field: "subscriptions." + ch.Topic, Msg: "not a subscription of group " + have.Group}
	}
	if ch.PoolSize != nil {
		if err := t.SetPoolSize(ch.Topic, *ch.PoolSize); err != nil {
			return err
		}
	}
	if ch.Rate != nil {
		l := throttle.Limit{Rate: *ch.Rate}
		if ch.Burst != nil {
			l.Burst = *ch.Burst
		}
		return t.SetRate(ch.Topic, l)
	}
	return nil
}

func hasTopic(s consumer.Settings, topic string) bool {
	for _, sub := range s.Subscriptions {
		if sub.Topic == topic {
			return true
		}
	}
	return false
}

// diff lists what changed in topic's live settings between two snapshots.
func diff(topic string, before, after consumer.Settings) []config.Change {
	var out []config.Change
	find := func(s consumer.Settings) (consumer.SubscriptionSettings, bool) {
		for _, sub := range s.Subscriptions {
			if sub.Topic == topic {
				return sub, true
			}
		}
		return consumer.SubscriptionSettings{}, false
	}
	b, ok1 := find(before)
	a, ok2 := find(after)
	if !ok1 || !ok2 {
		return nil
	}
	p := "subscriptions." + topic
	if b.PoolSize != a.PoolSize {
		out = append(out, config.Change{Field: p + ".poolSize", Old: strconv.Itoa(b.PoolSize), New: strconv.Itoa(a.PoolSize)})
	}
	if b.Rate.Rate != a.Rate.Rate || b.Rate.EffectiveBurst() != a.Rate.EffectiveBurst() {
		out = append(out, config.Change{Field: p + ".rate", Old: b.Rate.String(), New: a.Rate.String()})
	}
	return out
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(h.Status(r.Context()))
}

// changeResult is the JSON answer to a change asked with Accept: application/json.
type changeResult struct {
	Changes []config.Change `json:"changes"`
	Error   string          `json:"error,omitempty"`
}

func (h *Handler) set(w http.ResponseWriter, r *http.Request) {
	if crossSite(r) {
		h.refuse(w, r, http.StatusForbidden, "cross-site request refused")
		return
	}
	if h.o.authorize == nil {
		h.refuse(w, r, http.StatusForbidden, "changes are disabled: the service gave no authorizer")
		return
	}
	who, err := h.o.authorize(r)
	if err == nil && who == "" {
		err = errors.New("the authorizer named no one") // every change must be attributable
	}
	if err != nil {
		h.o.logger.Warn("rmqkit ops change refused", "remote", r.RemoteAddr, "error", err)
		h.refuse(w, r, http.StatusForbidden, "not authorized")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.refuse(w, r, http.StatusBadRequest, "bad form: "+err.Error())
		return
	}
	ch, err := parseChange(r.PostForm)
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	changes, err := h.Apply(who, ch)
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrUnknownGroup):
			code = http.StatusNotFound
		case errors.Is(err, config.ErrInvalid), errors.Is(err, consumer.ErrInvalidOption), errors.Is(err, consumer.ErrUnknownSubscription):
			code = http.StatusBadRequest
		}
		h.refuse(w, r, code, err.Error())
		return
	}
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(changeResult{Changes: changes})
		return
	}
	// Post/redirect/get: a reload of the page does not post again. The
	// location stays relative (http.Redirect would make it absolute from the
	// path after http.StripPrefix, leaving the mount point).
	w.Header().Set("Location", "./")
	w.WriteHeader(http.StatusSeeOther)
}

// refuse answers a change that was not made: JSON, or the page with the
// reason on top.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(changeResult{Error: msg})
		return
	}
	h.render(w, r, code, msg)
}

// parseChange reads the form fields of a change; empty fields are left out.
func parseChange(f url.Values) (Change, error) {
	ch := Change{Group: f.Get("group"), Topic: f.Get("topic")}
	if ch.Group == "" || ch.Topic == "" {
		return ch, errors.New("group and topic are required")
	}
	var err error
	if ch.PoolSize, err = optInt(f, "poolSize"); err != nil {
		return ch, err
	}
	if ch.Burst, err = optInt(f, "burst"); err != nil {
		return ch, err
	}
	if s := strings.TrimSpace(f.Get("rate")); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return ch, fmt.Errorf("rate %q is not a number", s)
		}
		ch.Rate = &v
	}
	return ch, nil
}

func optInt(f url.Values, key string) (*int, error) {
	s := strings.TrimSpace(f.Get(key))
	if s == "" {
		return nil, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not an integer", key, s)
	}
	return &v, nil
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// crossSite reports a request another site's page made the browser send.
func crossSite(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return origin == "null"
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host
}
