package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// notifyShutdown returns a context that the first SIGINT or SIGTERM
// cancels. A second signal exits the process at once with status 1. Call
// stop to release the signals.
func notifyShutdown(parent context.Context, logger *slog.Logger) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			logger.Info("signal received, shutting down (send another to force exit)", "signal", sig.String())
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			logger.Error("second signal received, exiting without a clean shutdown", "signal", sig.String())
			os.Exit(1)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// notifyReload returns a channel that receives once per SIGHUP (a signal
// arriving while one is pending is merged with it). Call stop to release
// the signal.
func notifyReload() (reload <-chan struct{}, stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				select {
				case out <- struct{}{}:
				default:
				}
			case <-done:
				return
			}
		}
	}()
	return out, func() {
		signal.Stop(sigs)
		close(done)
	}
}
