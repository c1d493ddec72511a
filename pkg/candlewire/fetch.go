package candlewire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultFetchChunk is Fetch's chunk size: about 90 KB a message for a
// liquid pair in the compact form, so a day of 1m candles is one message
// and a year is a stream of a hundred.
const DefaultFetchChunk = 5000

// Fetch returns every candle of symbol at interval iv with
// start <= open time < end, oldest first: one StreamHistoricalData call in
// the compact encoding, chunkSize candles per message (0 =
// DefaultFetchChunk), each chunk decoded as it arrives.
func Fetch(ctx context.Context, c historicalv1.HistoricalDataServiceClient, symbol string, iv historicalv1.Interval,
	start, end time.Time, chunkSize int) ([]Bar, error) {
	if chunkSize == 0 {
		chunkSize = DefaultFetchChunk
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.StreamHistoricalData(ctx, &historicalv1.StreamHistoricalDataRequest{Symbol: symbol, Interval: iv,
		Start: timestamppb.New(start), End: timestamppb.New(end), ChunkSize: int32(chunkSize),
		Encoding: historicalv1.CandleEncoding_CANDLE_ENCODING_COMPACT})
	if err != nil {
		return nil, err
	}
	var bars []Bar
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return bars, nil
		}
		if err != nil {
			return nil, err
		}
		chunk := msg.GetCompact()
		if chunk.GetSymbol() != symbol || chunk.GetInterval() != iv {
			if chunk.GetCount() == 0 && len(msg.GetCandles()) == 0 {
				continue // an empty chunk carries nothing to check
			}
			return nil, fmt.Errorf("%w: a chunk of %s %v in a stream of %s %v", ErrMalformed,
				chunk.GetSymbol(), chunk.GetInterval(), symbol, iv)
		}
		n := len(bars)
		if bars, err = AppendBars(bars, chunk); err != nil {
			return nil, err
		}
		if n > 0 && len(bars) > n && bars[n].OpenTimeMs <= bars[n-1].OpenTimeMs {
			return nil, fmt.Errorf("%w: chunk starting %s does not follow %s", ErrMalformed,
				formatMs(bars[n].OpenTimeMs), formatMs(bars[n-1].OpenTimeMs))
		}
	}
}
