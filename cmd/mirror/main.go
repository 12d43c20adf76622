// Command mirror mirrors container images between registries and IPFS, in
// the IPFS-enabled image format of nerdctl and stargz-snapshotter, with no
// containerd daemon.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/ipfs-mirror/mirror/internal/redact"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// CLI is the command tree. Each command lives in its own cmd_*.go file.
type CLI struct {
	Globals

	Sync    SyncCmd    `cmd:"" help:"Mirror every image of a list into IPFS and write the CID lockfile."`
	Compose ComposeCmd `cmd:"" help:"Compose helpers: rewrite a compose file to run mirrored images from IPFS."`
	Push    PushCmd    `cmd:"" help:"Copy an image into IPFS; prints the root CID as the last line of stdout."`
	Pull    PullCmd    `cmd:"" help:"Copy ipfs://CID to an OCI layout, a docker archive or a registry."`
	Inspect InspectCmd `cmd:"" help:"Print the tree of an IPFS-enabled image."`
	Pin     PinCmd     `cmd:"" help:"Pin whole images (every blob) by root CID, or by pin-handle CID."`
	Serve   ServeCmd   `cmd:"" help:"Serve IPFS images as a read-only registry (localhost:5050/ipfs/<CID>, and lockfile names)."`
	Verify  VerifyCmd  `cmd:"" help:"Check that every image of a lockfile resolves on IPFS and every blob matches its digest; --pin keeps them."`
	Publish PublishCmd `cmd:"" help:"Add a lockfile (and its list) to IPFS, pin it, print its CID; --ipns-key publishes it under a name."`
	Version VersionCmd `cmd:"" help:"Print the version."`

	VersionFlag kong.VersionFlag `name:"version" help:"Print the version and exit."`
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var cli CLI
	// Every output goes through the secrets of the command line.
	secrets := &redact.Set{}
	secrets.Add(secretsOf(args, os.Getenv)...)
	stdout, stderr := secrets.Writer(os.Stdout), secrets.Writer(os.Stderr)
	parser, err := kong.New(&cli,
		kong.Writers(stdout, stderr),
		kong.Name("mirror"),
		kong.Description("Mirror container images between registries and IPFS (nerdctl-compatible IPFS-enabled images), no containerd needed."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"version": "mirror " + buildVersion()},
		modeVars(),
		kong.Exit(func(code int) { panic(exitPanic(code)) }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "mirror:", err)
		return ExitUsage
	}
	code := func() (code int) {
		defer func() {
			if r := recover(); r != nil {
				if c, ok := r.(exitPanic); ok {
					code = int(c)
					return
				}
				panic(r)
			}
		}()
		kctx, err := parser.Parse(args)
		if err != nil {
			parser.Errorf("%s", err)
			return ExitUsage
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		cli.Globals.stdout, cli.Globals.stderr, cli.Globals.secrets = stdout, stderr, secrets
		cli.Globals.command = commandName(kctx.Command())
		kctx.BindTo(ctx, (*context.Context)(nil))
		err = kctx.Run(&cli.Globals)
		if err != nil {
			return report(stderr, ctx, err)
		}
		return ExitOK
	}()
	return code
}

type exitPanic int

// commandName is the command's words without its arguments ("compose
// rewrite"), safe to show other processes: arguments may carry secrets.
func commandName(cmd string) string {
	var words []string
	for _, w := range strings.Fields(cmd) {
		if strings.HasPrefix(w, "<") {
			break
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(g *Globals) error {
	fmt.Fprintln(g.stdout, "mirror", buildVersion())
	return nil
}

// buildVersion is the version stamped with -ldflags "-X main.version=…",
// else the module version the go command recorded (a tag or pseudo-version
// for `go install …@v`, the VCS revision for a build in a checkout), else
// "devel"; with the Go version that built it.
func buildVersion() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if v == "dev" {
		v = "devel"
		if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
			v = mv
		} else {
			var rev, modified string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if rev != "" {
				v = "devel " + rev
				if modified == "true" {
					v += "-dirty"
				}
			}
		}
	}
	return v + " (" + bi.GoVersion + ")"
}
