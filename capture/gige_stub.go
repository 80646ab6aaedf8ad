//go:build noaravis

package capture

import (
	"context"
	"errors"
	"fmt"
)

// openGigE fails in a build without Aravis (-tags noaravis).
func openGigE(_ context.Context, cfg Config) (Source, error) {
	return nil, fmt.Errorf("open gige camera %s: built without aravis (-tags noaravis): %w", cfg.Path, errors.ErrUnsupported)
}
