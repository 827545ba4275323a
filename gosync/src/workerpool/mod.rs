//! Worker pools: a fixed set of workers fed by a queue (ants, gammazero/workerpool).
