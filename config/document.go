package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rmqkit/rmqkit/consumer"
	"github.com/rmqkit/rmqkit/internal/yamlstrict"
	"github.com/rmqkit/rmqkit/pool"
	"github.com/rmqkit/rmqkit/pool/adaptive"
	"github.com/rmqkit/rmqkit/throttle"
)

// MaxDocumentSize is the largest document Parse accepts, in bytes.
const MaxDocumentSize = 1 << 20

// Limits of the values a document may hold, beside pool.MaxSize,
// throttle.MaxRate and throttle.MaxBurst.
const (
	MaxBatchSize  = consumer.MaxBatchSize
	MaxMaxRetries = 32 // the broker's ceiling on reconsume times
)

// Document is the configuration of one consumer. Pointer and nil fields
// are keys the document leaves out: it does not manage them (see the
// package documentation).
type Document struct {
	// Group must be the consumer's group; it is required, so that a file
	// cannot be applied to the wrong consumer.
	Group string `yaml:"group"`
	// ProcessLimit sets the limit of the consumer's process limiter
	// (consumer.WithProcessLimiter), which other consumers may share.
	ProcessLimit *Limit `yaml:"processLimit"`
	// GroupLimit sets the consumer's group limit.
	GroupLimit *GroupLimit `yaml:"groupLimit"`
	// Subscriptions holds settings by topic; every topic must be one the
	// consumer subscribes to. Subscriptions left out are not managed.
	Subscriptions map[string]Subscription `yaml:"subscriptions"`
	// Migration is read by package migrate (migrate.Watch), so that one
	// file drives a consumer and its migration between clusters; config
	// validates it and applies none of it.
	Migration *Migration `yaml:"migration"`

	lines map[string]int // key path -> line, from Parse
}

// Migration is the control section of a migration between clusters (see
// package migrate): nil fields are keys left out, which keep their current
// values.
type Migration struct {
	// Phase is the migrate.Subscription's phase: old-only (or old), dual,
	// new-only (or new).
	Phase *string `yaml:"phase"`
	// Weight is the migrate.Producer's weight: the percentage of produced
	// messages sent to the new cluster, in [0, 100].
	Weight *int `yaml:"weight"`
	// Force switches the phase without waiting for the drain; it requires
	// Phase. Remove it again after use.
	Force *bool `yaml:"force"`
}

// phaseNames are the phase names a migration section accepts, in any case, as
// migrate.ParsePhase reads them.
var phaseNames = []string{"old-only", "old", "dual", "new-only", "new"}

// Limit is a rate limit: rate in messages per second (0: unlimited) and
// burst (0: a tenth of a second's worth, see throttle.DefaultBurst).
type Limit struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// GroupLimit is the consumer group's limit: for each instance, or, with
// Shared, for all live instances together (consumer.WithGroupQuota).
type GroupLimit struct {
	Rate   float64 `yaml:"rate"`
	Burst  int     `yaml:"burst"`
	Shared bool    `yaml:"shared"`
}

// Subscription holds the settings of one subscription. Nil fields are not
// managed by the document.
type Subscription struct {
	PoolSize   *int     `yaml:"poolSize"`   // live; [1, pool.MaxSize]
	Rate       *float64 `yaml:"rate"`       // live; messages per second, 0 = unlimited
	Burst      *int     `yaml:"burst"`      // live, with rate; 0 = default
	BatchSize  *int     `yaml:"batchSize"`  // start-only; [1, MaxBatchSize]
	Orderly    *bool    `yaml:"orderly"`    // start-only
	KeyOrdered *bool    `yaml:"keyOrdered"` // start-only; consumer.WithKeyOrdered(); not with orderly or batchSize
	MaxRetries *int     `yaml:"maxRetries"` // start-only; [0, MaxMaxRetries]
	// AdaptivePool sizes the pool by itself (consumer.WithAdaptivePool);
	// start-only, and exclusive with PoolSize, which would pin the size.
	AdaptivePool *AdaptivePool `yaml:"adaptivePool"`
}

// AdaptivePool holds the bounds of adaptive pool sizing: min and max
// (0: 2 and 200) and the window, a Go duration such as "1s" or "250ms"
// (empty: one second; at least consumer.MinAdaptiveWindow).
type AdaptivePool struct {
	Min    int    `yaml:"min"`
	Max    int    `yaml:"max"`
	Window string `yaml:"window"`
}

// adaptive returns the consumer's form of a; the window must have been
// validated.
func (a *AdaptivePool) adaptive() consumer.Adaptive {
	w, _ := a.window()
	return consumer.Adaptive{Min: a.Min, Max: a.Max, Window: w}
}

func (a *AdaptivePool) window() (time.Duration, error) {
	if a.Window == "" {
		return 0, nil
	}
	return time.ParseDuration(a.Window)
}

func (l *Limit) limit() throttle.Limit      { return throttle.Limit{Rate: l.Rate, Burst: l.Burst} }
func (l *GroupLimit) limit() throttle.Limit { return throttle.Limit{Rate: l.Rate, Burst: l.Burst} }

// limit returns the subscription's rate limit and whether it sets one.
func (s Subscription) limit() (throttle.Limit, bool) {
	if s.Rate == nil {
		return throttle.Limit{}, false
	}
	l := throttle.Limit{Rate: *s.Rate}
	if s.Burst != nil {
		l.Burst = *s.Burst
	}
	return l, true
}

// Load reads and parses the document at path (see Parse).
func Load(path string) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	doc, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

// Parse decodes and validates a YAML document (see Validate). Unknown keys,
// duplicate keys and values of the wrong type are errors that name the key
// and its line. Every error wraps ErrInvalid.
func Parse(data []byte) (*Document, error) {
	root, err := parseNode(data)
	if err != nil {
		return nil, err
	}
	lines := make(map[string]int)
	var errs []error
	walk(root, "", rootSchema, lines, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	doc := &Document{}
	// walk has already reported what this would refuse, with the key's
	// path; this is the authoritative decoding.
	if err := yamlstrict.Decode(data, doc); err != nil {
		return nil, fieldError(err)
	}
	doc.lines = lines
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	return doc, nil
}

// parseNode returns the document's root mapping node.
func parseNode(data []byte) (*yaml.Node, error) {
	doc, err := yamlstrict.Root(data, MaxDocumentSize)
	if err != nil {
		return nil, fieldError(err)
	}
	root := deref(doc)
	if root == nil || root.Kind != yaml.MappingNode {
		return nil, &FieldError{Line: doc.Line, Msg: "the document must be a mapping (group: ..., subscriptions: ...)"}
	}
	return root, nil
}

// fieldError turns an error of yamlstrict into a *FieldError.
func fieldError(err error) error {
	var ye *yamlstrict.Error
	if errors.As(err, &ye) {
		return &FieldError{Line: ye.Line, Msg: ye.Msg}
	}
	return &FieldError{Msg: err.Error()}
}

// kind is what a key holds.
type kind int

const (
	kString kind = iota
	kFloat
	kInt
	kBool
	kMap    // fixed keys
	kTopics // any topic -> a subscription
)

type schema struct {
	kind kind
	keys map[string]*schema // kMap
	elem *schema            // kTopics
}

var (
	sString = &schema{kind: kString}
	sFloat  = &schema{kind: kFloat}
	sInt    = &schema{kind: kInt}
	sBool   = &schema{kind: kBool}

	rootSchema = &schema{kind: kMap, keys: map[string]*schema{
		"group":         sString,
		"processLimit":  {kind: kMap, keys: map[string]*schema{"rate": sFloat, "burst": sInt}},
		"groupLimit":    {kind: kMap, keys: map[string]*schema{"rate": sFloat, "burst": sInt, "shared": sBool}},
		"subscriptions": {kind: kTopics, elem: subscriptionSchema},
		"migration":     {kind: kMap, keys: map[string]*schema{"phase": sString, "weight": sInt, "force": sBool}},
	}}
	subscriptionSchema = &schema{kind: kMap, keys: map[string]*schema{
		"poolSize": sInt, "rate": sFloat, "burst": sInt, "batchSize": sInt, "orderly": sBool, "keyOrdered": sBool, "maxRetries": sInt,
		"adaptivePool": {kind: kMap, keys: map[string]*schema{"min": sInt, "max": sInt, "window": sString}},
	}}
)

// deref follows aliases; the schema is shallow, so this terminates.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// walk checks n against s: known keys, no duplicates, the right types. It
// records the line of every key under its path.
func walk(n *yaml.Node, path string, s *schema, lines map[string]int, errs *[]error) {
	n = deref(n)
	if n == nil {
		*errs = append(*errs, &FieldError{Field: path, Msg: "alias cannot be resolved"})
		return
	}
	if isNull(n) {
		return // left out
	}
	fail := func(msg string) { *errs = append(*errs, &FieldError{Field: path, Line: n.Line, Msg: msg}) }
	switch s.kind {
	case kMap, kTopics:
		if n.Kind != yaml.MappingNode {
			fail("must be a mapping")
			return
		}
		seen := make(map[string]int)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := deref(n.Content[i]), n.Content[i+1]
			if k == nil || k.Kind != yaml.ScalarNode {
				fail("keys must be plain names")
				continue
			}
			key := k.Value
			kp := key
			if path != "" {
				kp = path + "." + key
			}
			if first, dup := seen[key]; dup {
				*errs = append(*errs, &FieldError{Field: kp, Line: k.Line, Msg: fmt.Sprintf("duplicate key (first at line %d)", first)})
				continue
			}
			seen[key] = k.Line
			lines[kp] = k.Line
			var sub *schema
			if s.kind == kTopics {
				if key == "" {
					*errs = append(*errs, &FieldError{Field: kp, Line: k.Line, Msg: "empty topic name"})
					continue
				}
				sub = s.elem
			} else if sub = s.keys[key]; sub == nil {
				msg := "unknown key; known keys: " + strings.Join(sortedKeys(s.keys), ", ")
				if key == "<<" {
					msg = "merge keys are not supported"
				}
				*errs = append(*errs, &FieldError{Field: kp, Line: k.Line, Msg: msg})
				continue
			}
			walk(v, kp, sub, lines, errs)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			fail("must be a single value")
			return
		}
		// The YAML decoder would truncate 2.5 into an int and read "200"
		// as a number: accept only the tag the key wants.
		var err error
		tag := n.ShortTag()
		switch s.kind {
		case kString:
			var v string
			err = n.Decode(&v)
		case kFloat:
			var v float64
			if err = n.Decode(&v); tag != "!!int" && tag != "!!float" {
				err = errors.New("not a number")
			}
		case kInt:
			var v int
			if err = n.Decode(&v); tag != "!!int" {
				err = errors.New("not an integer")
			}
		case kBool:
			var v bool
			if err = n.Decode(&v); tag != "!!bool" {
				err = errors.New("not a bool")
			}
		}
		if err != nil {
			fail(fmt.Sprintf("%q is not %s", n.Value, kindName[s.kind]))
		}
	}
}

var kindName = map[kind]string{kString: "a string", kFloat: "a number", kInt: "an integer", kBool: "true or false"}

func sortedKeys(m map[string]*schema) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Validate checks the document on its own, without a consumer: the group
// is set and every value is in range. Errors wrap ErrInvalid and name the
// field (and its line, for a parsed document).
func (d *Document) Validate() error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Line: d.line(field), Msg: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(d.Group) == "" {
		fail("group", "required: the consumer group this document is for")
	}
	if d.ProcessLimit != nil {
		checkLimit(fail, "processLimit", d.ProcessLimit.limit())
	}
	if d.GroupLimit != nil {
		checkLimit(fail, "groupLimit", d.GroupLimit.limit())
	}
	for _, topic := range sortedTopics(d.Subscriptions) {
		s := d.Subscriptions[topic]
		p := "subscriptions." + topic
		if topic == "" {
			fail(p, "empty topic name")
		}
		if s.PoolSize != nil && (*s.PoolSize < 1 || *s.PoolSize > pool.MaxSize) {
			fail(p+".poolSize", "%d is outside [1, %d]", *s.PoolSize, pool.MaxSize)
		}
		if s.Burst != nil && s.Rate == nil {
			fail(p+".burst", "set without rate (rate and burst go together; rate: 0 means unlimited)")
		}
		if l, ok := s.limit(); ok {
			checkLimit(fail, p, l)
		}
		if s.BatchSize != nil && (*s.BatchSize < 1 || *s.BatchSize > MaxBatchSize) {
			fail(p+".batchSize", "%d is outside [1, %d]", *s.BatchSize, MaxBatchSize)
		}
		if s.MaxRetries != nil && (*s.MaxRetries < 0 || *s.MaxRetries > MaxMaxRetries) {
			fail(p+".maxRetries", "%d is outside [0, %d]", *s.MaxRetries, MaxMaxRetries)
		}
		if s.KeyOrdered != nil && *s.KeyOrdered {
			if s.Orderly != nil && *s.Orderly {
				fail(p+".keyOrdered", "set with orderly: a subscription is orderly or key-ordered, not both")
			}
			if s.BatchSize != nil {
				fail(p+".keyOrdered", "set with batchSize: key-ordered subscriptions hand messages to a Handler one at a time")
			}
		}
		if a := s.AdaptivePool; a != nil {
			checkAdaptive(fail, p+".adaptivePool", a)
			if s.PoolSize != nil {
				fail(p+".poolSize", "set with adaptivePool: a pool size pins an adaptive pool (adaptive sizing off); set one of them")
			}
		}
	}
	if m := d.Migration; m != nil {
		if m.Phase != nil && !slices.Contains(phaseNames, strings.ToLower(*m.Phase)) {
			fail("migration.phase", "%q is not a phase name (old-only, dual or new-only)", *m.Phase)
		}
		if m.Weight != nil && (*m.Weight < 0 || *m.Weight > 100) {
			fail("migration.weight", "%d is outside [0, 100]", *m.Weight)
		}
		if m.Force != nil && *m.Force && m.Phase == nil {
			fail("migration.force", "force without phase")
		}
	}
	return errors.Join(errs...)
}

func checkAdaptive(fail func(field, format string, args ...any), path string, a *AdaptivePool) {
	if err := (adaptive.Config{Min: a.Min, Max: a.Max}).Validate(pool.MaxSize); err != nil {
		fail(path, "%v", err)
	}
	w, err := a.window()
	switch {
	case err != nil:
		fail(path+".window", "%q is not a duration (e.g. 1s, 250ms)", a.Window)
	case a.Window != "" && w < consumer.MinAdaptiveWindow:
		fail(path+".window", "%v is below %v", w, consumer.MinAdaptiveWindow)
	}
}

func checkLimit(fail func(field, format string, args ...any), path string, l throttle.Limit) {
	switch {
	case math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0):
		fail(path+".rate", "%v is not a finite number", l.Rate)
	case l.Rate < 0 || l.Rate > throttle.MaxRate:
		fail(path+".rate", "%v is outside [0, %g] messages per second", l.Rate, float64(throttle.MaxRate))
	}
	if l.Burst < 0 || l.Burst > throttle.MaxBurst {
		fail(path+".burst", "%d is outside [0, %d]", l.Burst, throttle.MaxBurst)
	}
}

// line returns the line of field, or of its nearest parent, or 0.
func (d *Document) line(field string) int {
	for f := field; f != ""; {
		if l, ok := d.lines[f]; ok {
			return l
		}
		i := strings.LastIndexByte(f, '.')
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

func sortedTopics(m map[string]Subscription) []string {
	ts := make([]string, 0, len(m))
	for t := range m {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}
