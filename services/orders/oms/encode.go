package oms

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/tradsys/mesh/pkg/fixed"
)

// The store's hot values (orders and update log entries, written on every
// commit) are encoded by hand, byte for byte as encoding/json writes them
// (TestEncodeMatchesJSON): the stored format stays encoding/json's, and
// loading still uses it, but a commit no longer pays for reflection.

func appendOrder(b []byte, o *Order) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, o.ID, 10)
	b = append(b, `,"client_order_id":`...)
	b = appendString(b, o.ClientOrderID)
	b = append(b, `,"account":`...)
	b = appendString(b, o.Account)
	b = append(b, `,"symbol":`...)
	b = appendString(b, o.Symbol)
	b = append(b, `,"side":`...)
	b = strconv.AppendInt(b, int64(o.Side), 10)
	b = append(b, `,"type":`...)
	b = strconv.AppendInt(b, int64(o.Type), 10)
	b = appendDecimalField(b, `,"price":`, o.Price, true)
	b = appendDecimalField(b, `,"quantity":`, o.Quantity, false)
	b = appendDecimalField(b, `,"filled":`, o.Filled, true)
	b = appendDecimalField(b, `,"filled_notional":`, o.FilledNotional, true)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(o.Status), 10)
	if len(o.RejectReasons) > 0 {
		b = append(b, `,"reject_reasons":[`...)
		for i, r := range o.RejectReasons {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r)
		}
		b = append(b, ']')
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, o.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, o.UpdatedAt)
	b = append(b, `,"history":`...)
	if o.History == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range o.History {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendEvent(b, &o.History[i])
		}
		b = append(b, ']')
	}
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, o.Seq, 10)
	if o.Unresolved != "" {
		b = append(b, `,"unresolved":`...)
		b = appendString(b, o.Unresolved)
	}
	return append(b, '}')
}

func appendEvent(b []byte, e *Event) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"time":`...)
	b = appendTime(b, e.Time)
	if e.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, e.Reason)
	}
	if f := e.Fill; f != nil {
		b = append(b, `,"fill":{"trade_seq":`...)
		b = strconv.AppendUint(b, f.TradeSeq, 10)
		b = appendDecimalField(b, `,"price":`, f.Price, false)
		b = appendDecimalField(b, `,"quantity":`, f.Quantity, false)
		if f.Maker {
			b = append(b, `,"maker":true`...)
		}
		if !f.ExecutedAt.IsZero() {
			b = append(b, `,"executed_at":`...)
			b = appendTime(b, f.ExecutedAt)
		}
		b = append(b, '}')
	}
	b = appendDecimalField(b, `,"price":`, e.Price, true)
	b = appendDecimalField(b, `,"quantity":`, e.Quantity, true)
	return append(b, '}')
}

func appendUpdate(b []byte, u *Update) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, u.Seq, 10)
	b = append(b, `,"order_id":`...)
	b = strconv.AppendUint(b, u.OrderID, 10)
	b = append(b, `,"event":`...)
	b = appendEvent(b, &u.Event)
	b = append(b, `,"order":`...)
	b = appendOrder(b, &u.Order)
	return append(b, '}')
}

func appendDecimalField(b []byte, name string, d fixed.Decimal, omitEmpty bool) []byte {
	if omitEmpty && d == 0 {
		return b
	}
	b = append(b, name...)
	b = append(b, '"')
	b = d.AppendTo(b)
	return append(b, '"')
}

func appendTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		data, _ := json.Marshal(t) // out of JSON's range: encoding/json's answer
		return append(b, data...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as encoding/json quotes it: plain printable ASCII
// directly, anything else (escapes, HTML-safe forms, invalid UTF-8) by
// encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			data, _ := json.Marshal(s)
			return append(b, data...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
