// Package feeds is the market-data domain of the connectors service: a
// venue-neutral event model (Trade, BookUpdate), an in-memory per-symbol
// sequenced Stream that consumers can resume from, and three Connector
// implementations that publish into it:
//
//   - Simulator: seeded random-walk order flow, deterministic for a seed.
//   - Replay: recorded trades from Binance kline/trade CSV files or JSONL.
//   - Binance: a client of Binance's public WebSocket market-data streams.
//
// Prices and quantities are exact fixed-point Decimal values (int64, scale
// 1e8) parsed directly from decimal strings; no floating point is involved
// anywhere on the parse path.
//
// The package deliberately contains no gRPC or protobuf types; the service
// layer converts these events to its wire format.
package feeds
