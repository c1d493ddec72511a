package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// row writes one table row; empty cells print as "-" and cells are kept on
// one line so a stray tab or newline cannot break the columns.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		c = strings.Join(strings.Fields(c), " ")
		if c == "" {
			c = "-"
		}
		cells[i] = c
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// jsonOpts give the -o json form of a response: protojson (int64 as
// strings, enums by name, lowerCamel field names, as grpcurl prints them)
// with defaults emitted, so a zero used_bytes is there for scripts to read.
var jsonOpts = protojson.MarshalOptions{EmitDefaultValues: true}

// printJSON writes m as one indented JSON document. protojson varies its
// whitespace on purpose; re-indenting makes the output stable.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := jsonOpts.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// printJSONLine writes m as one compact JSON object on one line.
func printJSONLine(w io.Writer, m proto.Message) error {
	b, err := jsonOpts.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

func stateName(s coordinatorv1.ComponentState) string {
	if s == coordinatorv1.ComponentState_COMPONENT_STATE_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(s.String(), "COMPONENT_STATE_")
}

func eventName(t coordinatorv1.EventType) string {
	return strings.TrimPrefix(t.String(), "EVENT_TYPE_")
}

func bytesStr(n int64) string { return config.FormatBytes(n) }

func percent(part, whole int64) string {
	if whole <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", float64(part)*100/float64(whole))
}

// age is how long ago t was, rounded for reading; "-" when unset.
func age(t *timestamppb.Timestamp, now time.Time) string {
	if t == nil || (t.GetSeconds() == 0 && t.GetNanos() == 0) {
		return ""
	}
	return shortDuration(now.Sub(t.AsTime()))
}

// until is how long until t; "" when unset.
func until(t *timestamppb.Timestamp, now time.Time) string {
	if t == nil {
		return ""
	}
	d := t.AsTime().Sub(now)
	if d < 0 {
		return "now"
	}
	return "in " + shortDuration(d)
}

func durStr(d *durationpb.Duration) string {
	if d == nil || d.AsDuration() == 0 {
		return ""
	}
	return d.AsDuration().String()
}

func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func list(s []string) string { return strings.Join(s, ",") }
