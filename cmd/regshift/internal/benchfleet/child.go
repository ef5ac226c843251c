package benchfleet

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// With -split the coordinator runs in a child process, so that its heap is
// measured apart from the fleet's (the harness's). The child is this binary
// again (`regshift bench fleet-coordinator`, not listed in the usage),
// given its settings as flags. It talks to the harness over its standard
// streams, one line each way:
//
//	child -> harness   api http://127.0.0.1:PORT    once it serves
//	harness -> child   baseline                     collect garbage, take HeapInuse, restart the peak from it
//	child -> harness   heap BYTES
//	harness -> child   peak                         the highest HeapInuse sampled every 100 ms since
//	child -> harness   heap BYTES
//
// The end of its standard input stops it: the harness closes it when done,
// and the pipe closes by itself when the harness dies, so the child never
// outlives it. The harness waits for it, and kills it by its PID if it has
// not stopped within stopGrace.

// ChildCommand is the hidden subcommand that runs the child.
const ChildCommand = "bench fleet-coordinator"

const stopGrace = 30 * time.Second

// ServeCoordinator is the child of -split: it runs a coordinator with the
// settings in args until stdin ends or ctx is cancelled, answering the
// harness's questions about its heap on stdout.
func ServeCoordinator(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("regshift "+ChildCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s coordSettings
	brokers := fs.String("brokers", "", "Kafka brokers, comma-separated")
	fs.StringVar(&s.prefix, "prefix", "", "topic prefix")
	fs.IntVar(&s.partitions, "partitions", 12, "partitions of the commands topic")
	fs.StringVar(&s.keyFile, "key", "", "the coordinator's signing key (PKCS#8 PEM)")
	fs.StringVar(&s.nodeKeys, "node-keys", "", "the folder of every node's <id>.pub; empty: accept unsigned events")
	level := fs.String("log-level", "error", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return err
	}
	if *brokers == "" || s.prefix == "" || s.keyFile == "" {
		return errors.New("benchfleet: the coordinator child needs -brokers, -prefix and -key")
	}
	s.brokers = strings.Split(*brokers, ",")
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("component", "bench-coordinator")

	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return err
	}
	srv, err := newServer(s, reg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	heap := sampleHeap()
	defer heap.Stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	if _, err := fmt.Fprintf(stdout, "api http://%s\n", ln.Addr()); err != nil {
		cancel()
		<-served
		return err
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		for sc := bufio.NewScanner(stdin); sc.Scan(); {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case err := <-served:
			return err
		case line, ok := <-lines:
			if !ok { // the harness is done, or gone
				cancel()
				return <-served
			}
			switch line {
			case "baseline":
				heap.restart(heapInuse())
			case "peak":
			default:
				continue
			}
			if _, err := fmt.Fprintf(stdout, "heap %d\n", heap.peak.Load()); err != nil {
				cancel()
				<-served
				return err
			}
		}
	}
}

// child is the harness's handle on the coordinator child.
type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string   // its stdout, line by line; closed at its end
	quit  chan struct{} // closed by stop: nobody reads lines any more
	done  chan struct{} // closed once it exited, err set
	err   error
	api   string
}

// defaultCommand runs this binary's hidden subcommand.
func defaultCommand(args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.Command(exe, append(strings.Fields(ChildCommand), args...)...)
}

// startChild starts the coordinator child (command nil: defaultCommand)
// and waits for its API address.
func startChild(command func(args ...string) *exec.Cmd, s coordSettings, log *slog.Logger) (*child, error) {
	if command == nil {
		command = defaultCommand
	}
	cmd := command(append(s.args(), "-log-level", levelOf(log))...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the coordinator child: %w", err)
	}
	c := &child{cmd: cmd, in: in, lines: make(chan string), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			case <-c.quit:
			}
		}
		close(c.lines)
		c.err = cmd.Wait() // only once every read of stdout is over
		close(c.done)
	}()
	line, err := c.read()
	if err == nil && !strings.HasPrefix(line, "api ") {
		err = fmt.Errorf("the coordinator child said %q, want its API address", line)
	}
	if err != nil {
		c.stop()
		return nil, err
	}
	c.api = strings.TrimPrefix(line, "api ")
	return c, nil
}

// read is the child's next line.
func (c *child) read() (string, error) {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return "", errors.New("the coordinator child ended (see its log above)")
		}
		return line, nil
	case <-time.After(stopGrace):
		return "", fmt.Errorf("the coordinator child did not answer within %s", stopGrace)
	}
}

// heap asks the child a heap question ("baseline" or "peak").
func (c *child) heap(ask string) (uint64, error) {
	if _, err := fmt.Fprintln(c.in, ask); err != nil {
		return 0, fmt.Errorf("the coordinator child: %w", err)
	}
	line, err := c.read()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(line, "heap "), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the coordinator child said %q to %q", line, ask)
	}
	return n, nil
}

// stop ends the child: its stdin closed, it stops by itself; if it has not
// within stopGrace, it is killed by its PID. It returns once it exited.
// Only the first call does anything.
func (c *child) stop() {
	select {
	case <-c.quit:
		return
	default:
	}
	close(c.quit)
	_ = c.in.Close()
	select {
	case <-c.done:
	case <-time.After(stopGrace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// levelOf is the lowest level log writes, as -log-level says it.
func levelOf(log *slog.Logger) string {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if log.Enabled(context.Background(), l) {
			return strings.ToLower(l.String())
		}
	}
	return "error"
}
