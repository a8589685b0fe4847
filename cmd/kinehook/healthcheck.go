package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultHealthcheckURL matches the container image's `serve --addr :8080`.
const defaultHealthcheckURL = "http://127.0.0.1:8080/healthz"

// healthcheckURLEnv overrides the default URL, so an image run with another
// --addr can keep the image's HEALTHCHECK instruction.
const healthcheckURLEnv = "KINEHOOK_HEALTHCHECK_URL"

func init() { rootCmd.AddCommand(newHealthcheckCmd()) }

func newHealthcheckCmd() *cobra.Command {
	var (
		rawURL  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the server answers GET /healthz with 200, else 1 (for container health checks)",
		Long: `GET the server's health URL and exit 0 on a 200 answer, 1 otherwise (refused connection,
timeout, any other status). Container images have no curl: the Dockerfile's
HEALTHCHECK runs this. The URL defaults to ` + healthcheckURLEnv + `, else
` + defaultHealthcheckURL + `; a URL without a path gets /healthz. Point it at
/readyz to check readiness (the store answers and takes writes) instead of
liveness. Redirects are not followed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("url") {
				if v := os.Getenv(healthcheckURLEnv); v != "" {
					rawURL = v
				}
			}
			return runHealthcheck(cmd.Context(), rawURL, timeout, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&rawURL, "url", defaultHealthcheckURL, "health URL to GET (env "+healthcheckURLEnv+")")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}

// healthcheckTarget checks the URL and gives a bare server URL the path /healthz.
func healthcheckTarget(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--url: %q is not an http:// or https:// URL such as %s", raw, defaultHealthcheckURL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/healthz"
	}
	return u.String(), nil
}

// runHealthcheck GETs the URL once; any answer but 200 is an error, which
// makes the process exit 1.
func runHealthcheck(ctx context.Context, raw string, timeout time.Duration, out io.Writer) error {
	if timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	target, err := healthcheckTarget(raw)
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("health check request: %w", err)
	}
	req.Header.Set("User-Agent", "kinehook-healthcheck")
	client := &nethttp.Client{
		// A redirect is not health: a proxy's login page answers 200 too.
		CheckRedirect: func(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse },
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health check %s: %w", target, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode != nethttp.StatusOK {
		return fmt.Errorf("health check %s: %s: %s", target, res.Status, strings.TrimSpace(string(body)))
	}
	_, err = fmt.Fprintf(out, "ok: %s %s\n", target, res.Status)
	return err
}
