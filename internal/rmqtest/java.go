package rmqtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// JavaConsumer is internal/javabench/Consume.java compiled against the
// Apache RocketMQ Java client that scripts/rocketmq.sh downloads with the
// broker: the Java push consumer benchmarks compare rmqkit with.
type JavaConsumer struct {
	classpath string // the client's jars and the compiled class
	home      string // the JVM's user.home: the client writes its logs there
}

// JavaResult is what one run of the Java consumer reports about itself,
// from its skip-th message to its n-th.
type JavaResult struct {
	Elapsed time.Duration // wall time
	CPU     time.Duration // the JVM's user+sys CPU time (OperatingSystemMXBean.getProcessCpuTime)
	Count   int64         // messages consumed, at least n
}

// CompileJavaConsumer compiles Consume.java into dir with javac. The jars
// are those of $RMQKIT_ROCKETMQ_DIR (default <repo>/.rocketmq)
// dist/<version>/lib, present once scripts/rocketmq.sh has started a
// cluster. The error says what is missing: javac, java, or the jars.
func CompileJavaConsumer(dir string) (*JavaConsumer, error) {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	rmqDir := os.Getenv("RMQKIT_ROCKETMQ_DIR")
	if rmqDir == "" {
		rmqDir = filepath.Join(repo, ".rocketmq")
	}
	jars, _ := filepath.Glob(filepath.Join(rmqDir, "dist", "*", "lib", "rocketmq-client-*.jar"))
	if len(jars) == 0 {
		return nil, fmt.Errorf("no rocketmq-client jar under %s/dist/*/lib (scripts/rocketmq.sh up downloads it)", rmqDir)
	}
	lib := filepath.Dir(jars[len(jars)-1]) // the newest version, by name
	for _, tool := range []string{"javac", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s: %w", tool, err)
		}
	}
	classes := filepath.Join(dir, "classes")
	cp := filepath.Join(lib, "*")
	out, err := exec.Command("javac", "-nowarn", "-cp", cp, "-d", classes,
		filepath.Join(repo, "internal", "javabench", "Consume.java")).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("javac Consume.java: %w\n%s", err, out)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	return &JavaConsumer{classpath: cp + string(os.PathListSeparator) + classes, home: home}, nil
}

// Consume runs the Java consumer as a group of its own over topic (from the
// first offset, a no-op listener on threads threads) until n messages were
// consumed, in a JVM of its own, and returns what it reports of its window
// from the skip-th message (at least 1) to the n-th. ctx bounds the whole
// run; the JVM is killed when it ends.
func (j *JavaConsumer) Consume(ctx context.Context, c *Cluster, group, topic string, skip, n, threads int, instance string) (JavaResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java",
		"-Xms256m", "-Xmx512m", // the broker shares the machine
		"-Duser.home="+j.home,
		"-Drmq.logback.configurationFile=rmq.client.logback.xml",
		"-cp", j.classpath, "Consume",
		c.NameServer, group, topic, strconv.Itoa(skip), strconv.Itoa(n), strconv.Itoa(threads), instance)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return JavaResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return JavaResult{}, fmt.Errorf("start java: %w", err)
	}
	var res JavaResult
	found := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "RESULT" {
			ns, err1 := strconv.ParseInt(f[1], 10, 64)
			cpu, err2 := strconv.ParseInt(f[2], 10, 64)
			count, err3 := strconv.ParseInt(f[3], 10, 64)
			if err := errors.Join(err1, err2, err3); err != nil {
				return res, fmt.Errorf("java consumer: bad result line %q: %w", sc.Text(), err)
			}
			res, found = JavaResult{Elapsed: time.Duration(ns), CPU: time.Duration(cpu), Count: count}, true
		}
	}
	werr := cmd.Wait()
	if !found {
		return res, fmt.Errorf("java consumer reported no result (%v; ctx: %v); stderr:\n%s", werr, ctx.Err(), tail(stderr.String(), 2000))
	}
	return res, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
