package migrate

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"

	rmqconfig "github.com/rmqkit/rmqkit/config"
	"github.com/rmqkit/rmqkit/internal/yamlstrict"
)

// maxDocumentSize is the largest control document accepted, in bytes.
const maxDocumentSize = 64 << 10

// Document is a control document for Watch, either a file of its own:
//
//	phase: dual    # old-only (or old), dual, new-only (or new)
//	weight: 50     # percentage of produced messages sent to the new cluster
//	force: false   # optional: switch the phase without waiting for the drain
//
// or the migration section of the consumer's configuration file (package
// config), so that one file drives the consumer and its migration:
//
//	group: billing
//	subscriptions:
//	  invoices: {poolSize: 16}
//	migration: {phase: dual, weight: 50}
//
// A key left out is not managed: phase and weight keep their current
// values. The same file can drive the producers and the consumers of a
// service; a process without one of them ignores its key.
type Document struct {
	// Phase is the Subscription's phase; nil when the document leaves it
	// out.
	Phase *Phase
	// Weight is the Producer's weight in [0, 100]; nil when left out.
	Weight *int
	// Force makes the phase switch skip the drain wait (ForcePhase). It
	// requires Phase. Remove it again after use: it applies to every phase
	// the document sets while it is there.
	Force bool
}

// String formats the document like its YAML, with "-" for keys left out.
func (d Document) String() string {
	phase, weight := "-", "-"
	if d.Phase != nil {
		phase = d.Phase.String()
	}
	if d.Weight != nil {
		weight = fmt.Sprint(*d.Weight)
	}
	s := "phase: " + phase + ", weight: " + weight
	if d.Force {
		s += ", force: true"
	}
	return s
}

// Parse decodes and validates a control document as a whole. A document
// with a group or migration key is a configuration file: config.Parse
// validates all of it and its migration section is the control document.
// Any other must be one mapping with only the keys phase, weight and force,
// each once; phase a phase name (ParsePhase), weight an integer in [0,
// 100], force true or false and only with phase. Every error wraps
// config.ErrInvalid and is a *config.FieldError (several are joined) that
// names the key and its line.
func Parse(data []byte) (*Document, error) {
	root, err := parseRoot(data)
	if err != nil {
		return nil, err
	}
	if hasKey(root, "group") || hasKey(root, "migration") {
		return fromConfig(data)
	}
	d, err := parseControl(root)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// fromConfig reads the migration section of a configuration file.
func fromConfig(data []byte) (*Document, error) {
	cd, err := rmqconfig.Parse(data)
	if err != nil {
		return nil, err
	}
	var doc Document
	if m := cd.Migration; m != nil {
		if m.Phase != nil {
			p, err := ParsePhase(*m.Phase) // validated by config.Parse
			if err != nil {
				return nil, &rmqconfig.FieldError{Field: "migration.phase", Msg: err.Error()}
			}
			doc.Phase = &p
		}
		doc.Weight = m.Weight
		doc.Force = m.Force != nil && *m.Force
	}
	return &doc, nil
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// parseControl reads a control document of its own.
func parseControl(root *yaml.Node) (Document, error) {
	var (
		doc   Document
		errs  []error
		seen  = make(map[string]int)
		force *yaml.Node
	)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, &rmqconfig.FieldError{Line: k.Line, Msg: "keys must be plain names"})
			continue
		}
		key := k.Value
		fail := func(format string, args ...any) {
			errs = append(errs, &rmqconfig.FieldError{Field: key, Line: k.Line, Msg: fmt.Sprintf(format, args...)})
		}
		if first, dup := seen[key]; dup {
			fail("duplicate key (first at line %d)", first)
			continue
		}
		seen[key] = k.Line
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			fail("anchors and aliases are not supported")
			continue
		}
		switch key {
		case "phase":
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
				fail("%s is not a phase name (old-only, dual or new-only)", describe(v))
				continue
			}
			p, err := ParsePhase(v.Value)
			if err != nil {
				fail("%q is not a phase name (old-only, dual or new-only)", v.Value)
				continue
			}
			doc.Phase = &p
		case "weight":
			var w int
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&w) != nil {
				fail("%s is not an integer", describe(v))
				continue
			}
			if err := checkWeight(w); err != nil {
				fail("%d is outside [0, 100]", w)
				continue
			}
			doc.Weight = &w
		case "force":
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&doc.Force) != nil {
				fail("%s is not true or false", describe(v))
				continue
			}
			force = k
		default:
			fail("unknown key; known keys: force, phase, weight")
		}
	}
	if force != nil && doc.Force && doc.Phase == nil {
		errs = append(errs, &rmqconfig.FieldError{Field: "force", Line: force.Line, Msg: "force without phase"})
	}
	if len(errs) > 0 {
		return Document{}, errors.Join(errs...)
	}
	return doc, nil
}

// parseRoot returns the document's root mapping.
func parseRoot(data []byte) (*yaml.Node, error) {
	root, err := yamlstrict.Root(data, maxDocumentSize)
	if err != nil {
		var ye *yamlstrict.Error
		if errors.As(err, &ye) {
			return nil, &rmqconfig.FieldError{Line: ye.Line, Msg: ye.Msg}
		}
		return nil, &rmqconfig.FieldError{Msg: err.Error()}
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, &rmqconfig.FieldError{Line: root.Line, Msg: "empty document"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &rmqconfig.FieldError{Line: root.Line, Msg: "the document must be a mapping (phase: ..., weight: ...)"}
	}
	return root, nil
}

// describe names a node's value for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "an empty value"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "the value"
}
