package benchfleet

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// WriteSetup says what the runs measure.
func WriteSetup(w io.Writer, cfg Config, runs int) {
	broker := "kfake (embedded)"
	if len(cfg.Brokers) > 0 {
		broker = strings.Join(cfg.Brokers, ",")
	}
	health := fmt.Sprintf("every %s and after each command", cfg.Health)
	if cfg.Health == 0 {
		health = "after each command only"
	}
	events := "signed, each node with its own Ed25519 key (key id = node id), verified by the coordinator against a folder of their .pub"
	if cfg.UnsignedEvents {
		events = "UNSIGNED (-unsigned-events), the coordinator accepting unsigned events"
	}
	fmt.Fprintf(w, "regshift bench fleet: %d nodes (half providers, half consumers) on %s, %d run(s); acks and health %s\n",
		cfg.Nodes, broker, runs, events)
	fmt.Fprintf(w, "plan: waves canary 1 + 10/50/100 %% of each role, max in flight %d, soak %s a gate, finalize automatic; health %s; %d command partitions\n\n",
		cfg.Nodes, cfg.Soak, health, cfg.Partitions)
}

var columns = []struct {
	name  string
	width int
}{
	{"run", 3}, {"nodes", 7}, {"create->end", 11}, {"-soaks", 9}, {"cmd/s", 8}, {"ack/s", 8}, {"state MB", 9},
	{"heap MB", 8}, {"B/node", 8}, {"floor", 8}, {"ratio", 7}, {"round", 7}, {"round/floor", 11},
	{"coord MB", 8}, {"coord B/node", 12}, {"coord peak MB", 13}, {"switch-backs", 12}, {"phase", 0},
}

// WriteHeader writes the table's header.
func WriteHeader(w io.Writer) {
	cells := make([]string, len(columns))
	for i, c := range columns {
		cells[i] = c.name
	}
	writeCells(w, cells)
}

// WriteRow writes one run's row, under it the accounting of each kind's
// largest burst, and why it did not finalize.
func WriteRow(w io.Writer, run int, r Result) {
	largest := r.Largest()
	coord := []string{"-", "-", "-"}
	if r.Split {
		coord = []string{megabytes(r.CoordGrowth()), fmt.Sprint(r.CoordGrowth() / uint64(r.Nodes)), megabytes(r.CoordPeak)}
	}
	writeCells(w, append([]string{
		fmt.Sprint(run), fmt.Sprint(r.Nodes), seconds(r.Elapsed), seconds(r.Active()),
		fmt.Sprintf("%.0f", r.PerSecond(r.Commands)), fmt.Sprintf("%.0f", r.PerSecond(r.Acks)),
		fmt.Sprintf("%.1f", float64(r.StateBytes)/1e6), megabytes(r.HeapGrowth()),
		fmt.Sprint(r.HeapGrowth() / uint64(r.Nodes)), seconds(r.Floor), fmt.Sprintf("%.1fx", r.Ratio()),
		seconds(largest.Round), fmt.Sprintf("%.1fx", largest.Ratio())},
		append(coord, fmt.Sprint(r.SwitchBacks), string(r.Phase))...))
	if r.Signed {
		fmt.Fprintf(w, "    run %d: events signed: %d node keys generated in %s, their .pub written in %s (%d cores)\n",
			run, r.Nodes, ms(r.KeysGenerated), ms(r.KeysWritten), runtime.GOMAXPROCS(0))
	} else {
		fmt.Fprintf(w, "    run %d: events unsigned (-unsigned-events)\n", run)
	}
	for _, b := range r.Bursts {
		fmt.Fprintf(w, "    run %d: %-9s %s, %d nodes, %d commands: round %s = floor %s + sign %s + encode %s + verify %s + state %s (%d records, %.1f MB)"+
			" + verify-events %s + sign-events %s (%d acks + %d health) + rest %s; last ack queued at %s\n",
			run, b.Kind, b.Name, b.Nodes, b.Commands, ms(b.Round), ms(b.Floor), ms(b.Sign), ms(b.Encode),
			ms(b.Verify), ms(b.State), b.StateRecords, float64(b.StateBytes)/1e6, ms(b.VerifyEvents), ms(b.SignEvents), b.Acks, b.Health,
			ms(b.Rest()), ms(b.LastAck))
	}
	if r.DeadEvents != 0 {
		fmt.Fprintf(w, "    run %d: the coordinator dead-lettered %.0f of the fleet's events (-1: not counted; -log-level warn says why)\n", run, r.DeadEvents)
	}
	if r.Problem != "" {
		fmt.Fprintf(w, "    run %d: %s\n", run, r.Problem)
	}
	if r.Duplicates > 0 || r.Refused > 0 {
		fmt.Fprintf(w, "    run %d: %d re-sent commands answered as duplicates, %d refused\n", run, r.Duplicates, r.Refused)
	}
}

func writeCells(w io.Writer, cells []string) {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, "%*s", columns[i].width, c)
	}
	fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// ms is seconds to the millisecond, for the accounting of a round.
func ms(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

func megabytes(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/1e6) }

// WriteLegend says what the columns mean.
func WriteLegend(w io.Writer) {
	fmt.Fprint(w, `
create->end  from publishing the create request to the rollout's last decision (finalized, or where it stopped)
-soaks       create->end less gates x soak: the time the rollout worked
cmd/s ack/s  commands carried out and acks sent by the simulated fleet, over -soaks
state MB     bytes written to the state topic from the create on (keys, values, headers)
heap MB      the process's peak HeapInuse (sampled every 100 ms) over the baseline taken before the create with
             the fleet running; the fleet's transient buffers are in it, and on kfake the broker's copy of every record
B/node       heap MB per node
floor        raw kafka-go round on the same broker: keyed produce of N small records -> a reader per partition ->
             an ack record each -> N acks read; first produce to last ack
ratio        one command->ack round of the rollout (-soaks / commands per node) over the floor; gates' waits included
round        the largest burst of the run (uninstall to one role, install or activate to one wave): from the
             coordinator stamping its first command (the record's ce_time) to it persisting the fold of the last
             ack (ce_time of the first state record showing the last node past that step)
round/floor  round over the raw floor measured at the burst's node count
coord MB     -split: the coordinator child's peak HeapInuse (sampled every 100 ms) over its own baseline after a GC
             just before the create; "-" when the coordinator runs in this process
coord B/node coord MB per node
coord peak   -split: the child's absolute peak HeapInuse
Under each row, how the fleet signed its events (the keys' generation and .pub writing), then each kind's largest
burst: its round = the floor at its size + signing its commands (Ed25519, events.Signer) + the rest of encoding them
(events.Encoder) + verifying them (events.CommandVerifier, as the fleet does) + encoding the state records stamped
within the round + the coordinator verifying the acks and health reports the fleet published within the round
(events.EventVerifier.Decode, by their ce_time, any node's) + the fleet signing them + the rest, what these do not
explain. Unit costs are measured at the start of the run, one call at a time on one goroutine; the fleet verifies on
a reader a partition, the coordinator decodes events on every core, so verify terms are serial sums, not necessarily
wall time. "last ack queued": when the fleet queued the burst's last ack, from the same start.
`)
}
