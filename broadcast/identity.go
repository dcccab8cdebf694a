package broadcast

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// An instance's identity is resolved once, in consumer.New, from the first of:
//
//  1. WithIdentity;
//  2. the environment variable POD_NAME (set it from the pod's
//     metadata.name with the downward API), then HOSTNAME (which Kubernetes
//     and Docker set to the pod or container name);
//  3. the file "identity" in the state directory (WithStateDir), created
//     with a new random identity on first use.
//
// It is then sanitised: every character outside [a-zA-Z0-9_] becomes '_'.
// '-' is replaced too, so that the last '-' of a derived group separates the
// base group from the identity: garbage collection of base "orders" can
// never mistake "orders-eu-pod_1", an instance of base "orders-eu", for one
// of its own. '%' and '|', legal in group names, are reserved for namespaces
// and the broker's own groups. An identity too long for the group name is
// cut and suffixed with '_' and a hash of the whole, so distinct long
// identities stay distinct.

// Identity sources, in order of precedence; for logs.
const (
	sourceOption    = "WithIdentity"
	sourcePodName   = "POD_NAME"
	sourceHostname  = "HOSTNAME"
	sourceStateFile = "state file"
)

// identityFile is the name of the file in the state directory.
const identityFile = "identity"

// maxIdentityLen bounds the identity part of a group name (a Kubernetes pod
// name is at most 63 characters).
const maxIdentityLen = 64

// minIdentityLen is the shortest room a base group may leave for the
// identity: a hash suffix alone takes 9.
const minIdentityLen = 16

// maxGroupLen is the broker's limit on group names.
const maxGroupLen = 255

var (
	disallowed = regexp.MustCompile(`[^a-zA-Z0-9_]`)
	identityRE = regexp.MustCompile(`^[a-zA-Z0-9_]+$`)
	groupChars = regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)
)

// resolveIdentity returns the raw (unsanitised) identity and its source.
func resolveIdentity(cfg *config) (id, source string, err error) {
	if cfg.identityGiven {
		if strings.TrimSpace(cfg.identity) == "" {
			return "", "", fmt.Errorf("%w: identity: empty (omit WithIdentity to take it from the environment or the state directory)", ErrInvalidOption)
		}
		return cfg.identity, sourceOption, nil
	}
	for _, env := range []string{sourcePodName, sourceHostname} {
		if v := strings.TrimSpace(cfg.getenv(env)); v != "" {
			return v, env, nil
		}
	}
	dir := cfg.stateDir
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", "", fmt.Errorf("%w: no WithIdentity, POD_NAME or HOSTNAME, and no state directory: %v", ErrNoIdentity, err)
		}
		dir = filepath.Join(base, "rmqkit", "broadcast")
	}
	id, err = stateIdentity(dir, cfg.hostname)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrNoIdentity, err)
	}
	return id, sourceStateFile, nil
}

// stateIdentity reads the identity persisted in dir, creating it on first
// use. The file is written to a temporary file, synced, and then linked to
// its name, which fails if another process created it meanwhile (that one
// wins and is read back); where hard links are not supported it is renamed
// instead. The directory is synced after.
func stateIdentity(dir string, hostname func() (string, error)) (string, error) {
	path := filepath.Join(dir, identityFile)
	if id, err := readIdentity(path); !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".identity-*")
	if err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a link, or a failure
	_, err = tmp.WriteString(newIdentity(hostname) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		if err := os.Rename(tmp.Name(), path); err != nil {
			return "", fmt.Errorf("create %s: %w", path, err)
		}
	}
	syncDir(dir)
	return readIdentity(path)
}

func readIdentity(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("%s is empty: remove it to have a new identity created, or set WithIdentity", path)
	}
	return id, nil
}

// syncDir makes a rename or link in dir durable; errors are ignored, as
// some systems cannot sync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// newIdentity returns a fresh identity: the host name, for people reading
// group lists, and random hex, for uniqueness.
func newIdentity(hostname func() (string, error)) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "instance"
	if h, err := hostname(); err == nil {
		if h = strings.Trim(sanitize(h), "_"); h != "" {
			prefix = h[:min(len(h), 24)]
		}
	}
	return prefix + "_" + hex.EncodeToString(b[:])
}

// sanitize replaces every character a group name should not contain by '_'.
func sanitize(s string) string { return disallowed.ReplaceAllString(s, "_") }

// fitIdentity sanitises id and cuts it to n characters; a cut identity ends
// with '_' and 8 hex digits of the SHA-256 of the sanitised whole.
func fitIdentity(id string, n int) string {
	id = sanitize(id)
	if len(id) <= n {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:n-9] + "_" + hex.EncodeToString(sum[:4])
}

// derive returns the sanitised identity and the derived group of base for
// the raw identity id; nsLen is the length of the namespace prefix the
// broker adds ("ns%"), which counts against the broker's limit.
func derive(base, id string, nsLen int) (identity, group string, err error) {
	switch {
	case base == "":
		return "", "", fmt.Errorf("%w: base group: empty", ErrInvalidOption)
	case !groupChars.MatchString(base):
		return "", "", fmt.Errorf("%w: base group %q: only letters, digits, '%%', '|', '_' and '-' are allowed", ErrInvalidOption, base)
	}
	room := min(maxIdentityLen, maxGroupLen-nsLen-len(base)-1)
	if room < minIdentityLen {
		return "", "", fmt.Errorf("%w: base group %q: too long to add an instance identity (at most %d characters)",
			ErrInvalidOption, base, maxGroupLen-nsLen-1-minIdentityLen)
	}
	identity = fitIdentity(strings.TrimSpace(id), room)
	return identity, base + "-" + identity, nil
}

// GroupName returns the consumer group that the instance with the given
// identity uses for baseGroup: baseGroup, '-', and the identity sanitised
// and, if need be, shortened (see Consumer.Identity). It is the name to
// look for in broker tools, or to delete by hand. The namespace, if any, is
// not included.
func GroupName(baseGroup, identity string) (string, error) {
	if strings.TrimSpace(identity) == "" {
		return "", fmt.Errorf("%w: identity: empty", ErrInvalidOption)
	}
	_, g, err := derive(baseGroup, identity, 0)
	return g, err
}
