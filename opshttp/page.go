package opshttp

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/rmqkit/rmqkit/throttle"
)

//go:embed page.html
var pageSource string

// pageTemplate is parsed once; it is read-only after that.
var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"limit": func(l throttle.Limit) string { return l.String() },
	"pct": func(n, of int) int {
		if of <= 0 {
			return 0
		}
		return min(100, n*100/of)
	},
	"dur": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"rate": func(l throttle.Limit) string {
		if l.Unlimited() {
			return ""
		}
		return strconv.FormatFloat(l.Rate, 'g', -1, 64)
	},
	"otherLag": otherLag,
	"sides":    sides,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("15:04:05")
	},
}).Parse(pageSource))

type pageData struct {
	Status
	Refresh int // seconds; 0: no reload
	Error   string
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) { h.render(w, r, http.StatusOK, "") }

func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, msg string) {
	var buf bytes.Buffer
	err := pageTemplate.Execute(&buf, pageData{Status: h.Status(r.Context()), Refresh: int(h.o.refresh / time.Second), Error: msg})
	if err != nil {
		h.o.logger.Error("rmqkit ops page", "error", err)
		http.Error(w, "page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page loads nothing from elsewhere and runs only its own inline script.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// otherLag returns the lag figures of topics that are not a subscription's
// (the retry topic).
func otherLag(c ConsumerStatus) map[string]int64 {
	out := make(map[string]int64)
	for t, n := range c.Lag {
		out[t] = n
	}
	for _, s := range c.Subscriptions {
		delete(out, s.Topic)
	}
	return out
}

type namedSide struct {
	Name string
	SideStatus
}

func sides(m MigrationStatus) []namedSide {
	return []namedSide{{"old", m.Old}, {"new", m.New}}
}
