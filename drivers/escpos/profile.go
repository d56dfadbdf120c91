package escpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/configs"
)

// Profile describes what a printer model can do. Profiles are data: configs/printers/NAME.json,
// embedded in the binary (configs.Printers) and overridable from a directory.
type Profile struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// WidthDots is the printable width in dots (384 on 58 mm paper at 203 dpi, 576 on
	// 80 mm); Columns the characters of font A (12 dots) on one line.
	WidthDots int `json:"width_dots"`
	Columns   int `json:"columns"`
	// CodePage is the ESC t table for text outside Chinese mode: pc437, pc850, pc858 or
	// wpc1252.
	CodePage string `json:"code_page"`
	// Chinese means the printer has GB18030 fonts: the driver enters Chinese mode (FS &)
	// and sends non-ASCII text as double-byte GB18030.
	Chinese bool `json:"chinese"`
	// NativeQR means the printer encodes QR codes itself (GS ( k); otherwise the driver
	// sends them as raster images.
	NativeQR bool `json:"native_qr"`
	// Raster means GS v 0 works; RasterBandRows is the height of one raster command.
	Raster         bool `json:"raster"`
	RasterBandRows int  `json:"raster_band_rows"`
	// Cutter is "none", "full" or "partial".
	Cutter string `json:"cutter"`
	// Drawer means the printer has a cash drawer kick-out port (ESC p).
	Drawer bool `json:"drawer"`
	// Status means the printer answers DLE EOT; without it the driver prints blind.
	Status bool `json:"status"`
	// FeedLines are fed after the receipt so that the end clears the tear bar or cutter.
	FeedLines int `json:"feed_lines"`
}

// ErrUnknownProfile means no profile has the name asked for.
var ErrUnknownProfile = errors.New("unknown printer profile")

var profileName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// LoadProfile returns the profile called name: from dir/NAME.json when dir is not empty
// and the file exists there, else from the profiles embedded in the binary. An unknown
// name gives an error wrapping ErrUnknownProfile that lists the names known; a file that
// does not describe a usable profile, one wrapping posagent.ErrInvalidInput.
func LoadProfile(name, dir string) (*Profile, error) {
	if !profileName.MatchString(name) {
		return nil, &posagent.Error{Kind: posagent.ErrInvalidInput, Msg: fmt.Sprintf("printer profile name %q is not valid (lower-case letters, digits, . _ -)", name)}
	}
	if dir != "" {
		data, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err == nil {
			return parseProfile(name, data)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("printer profile %s: %w", name, err)
		}
	}
	data, err := fs.ReadFile(configs.Printers, "printers/"+name+".json")
	if err != nil {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownProfile, name, strings.Join(ProfileNames(dir), ", "))
	}
	return parseProfile(name, data)
}

// ProfileNames lists the embedded profiles and those in dir (if not empty), sorted.
func ProfileNames(dir string) []string {
	set := map[string]bool{}
	if ents, err := fs.ReadDir(configs.Printers, "printers"); err == nil {
		for _, e := range ents {
			set[strings.TrimSuffix(e.Name(), ".json")] = true
		}
	}
	if dir != "" {
		if ents, err := os.ReadDir(dir); err == nil {
			for _, e := range ents {
				if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && profileName.MatchString(n) {
					set[n] = true
				}
			}
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func parseProfile(name string, data []byte) (*Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, posagent.Invalidf("printer profile %s: %v", name, err)
	}
	if p.Name != name {
		return nil, posagent.Invalidf("printer profile %s: the file names itself %q", name, p.Name)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate checks that the profile describes a printer the driver can drive.
func (p *Profile) Validate() error {
	bad := func(format string, args ...any) error {
		return posagent.Invalidf("printer profile %s: "+format, append([]any{p.Name}, args...)...)
	}
	switch {
	case p.WidthDots < 128 || p.WidthDots > 2048 || p.WidthDots%8 != 0:
		return bad("width_dots %d must be a multiple of 8 from 128 to 2048", p.WidthDots)
	case p.Columns < 16 || p.Columns > 128:
		return bad("columns %d must be from 16 to 128", p.Columns)
	case p.RasterBandRows < 0 || p.RasterBandRows > 2048:
		return bad("raster_band_rows %d must be from 0 to 2048", p.RasterBandRows)
	case p.FeedLines < 0 || p.FeedLines > 20:
		return bad("feed_lines %d must be from 0 to 20", p.FeedLines)
	case !p.NativeQR && !p.Raster:
		return bad("prints no QR codes: neither native_qr nor raster")
	}
	if _, ok := codePages[p.CodePage]; !ok {
		return bad("code_page %q is not one of pc437, pc850, pc858, wpc1252", p.CodePage)
	}
	switch p.Cutter {
	case "none", "full", "partial":
	default:
		return bad("cutter %q must be none, full or partial", p.Cutter)
	}
	return nil
}
