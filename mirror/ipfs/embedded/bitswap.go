package embedded

import (
	"sync"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsclient "github.com/ipfs/boxo/bitswap/client"
	"github.com/ipfs/kubo/core"
	"go.uber.org/fx"
)

// dontHaveMinTimeout is the least time the embedded node's bitswap client
// waits for a peer's answer to a want-block before it takes silence for
// "don't have". boxo's default (50 ms, else twice the measured latency)
// drops a busy seed from a session on a loaded machine, and a consumer
// whose only peer is that seed then has nobody to ask.
const dontHaveMinTimeout = time.Second

var bitswapOnce sync.Once

// registerBitswapOptions adds mirror's bitswap client settings to every
// node kubo builds in this process (kubo's only extension point for them
// is process-wide; the embedded node is the only node mirror builds).
func registerBitswapOptions() {
	bitswapOnce.Do(func() {
		core.RegisterFXOptionFunc(func(info core.FXNodeInfo) ([]fx.Option, error) {
			cfg := bsclient.DefaultDontHaveTimeoutConfig()
			cfg.MinTimeout = dontHaveMinTimeout
			opt := bitswap.WithClientOption(bsclient.WithDontHaveTimeoutConfig(cfg))
			return append(info.FXOptions, fx.Provide(fx.Annotate(func() bitswap.Option { return opt }, fx.ResultTags(`group:"bitswap-options"`)))), nil
		})
	})
}
