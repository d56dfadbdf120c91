package possim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/posagent/posagent/configs"
)

// ErrUnknownProfile means no printer profile has the name asked for.
var ErrUnknownProfile = errors.New("unknown printer profile")

// PrinterProfile is what the simulated printer takes from a printer profile (the
// configs/printers/NAME.json files that drivers/escpos drives printers by): the paper
// width, whether the printer starts in Chinese (GB18030 double-byte) mode, and its code
// page. It is read here, not through drivers/escpos, so that the simulator stays an
// independent reading of the printer.
type PrinterProfile struct {
	Name      string `json:"name"`
	WidthDots int    `json:"width_dots"`
	Chinese   bool   `json:"chinese"`
	CodePage  string `json:"code_page"`
}

// codePageNumbers are the ESC t numbers of the code pages a profile may name.
var codePageNumbers = map[string]byte{"pc437": 0, "pc850": 2, "pc858": 19, "wpc1252": 16}

var profileNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// LoadPrinterProfile returns the embedded profile called name, or, when name ends in
// .json, the profile in that file. An unknown name gives an error wrapping
// ErrUnknownProfile that lists the names known.
func LoadPrinterProfile(name string) (*PrinterProfile, error) {
	var data []byte
	var err error
	if strings.HasSuffix(name, ".json") {
		if data, err = os.ReadFile(name); err != nil {
			return nil, fmt.Errorf("printer profile: %w", err)
		}
	} else {
		if !profileNameRE.MatchString(name) {
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownProfile, name, strings.Join(profileNames(), ", "))
		}
		if data, err = fs.ReadFile(configs.Printers, "printers/"+name+".json"); err != nil {
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownProfile, name, strings.Join(profileNames(), ", "))
		}
	}
	var pp PrinterProfile
	if err := json.Unmarshal(data, &pp); err != nil {
		return nil, fmt.Errorf("printer profile %s: %w", name, err)
	}
	if pp.WidthDots < 96 || pp.WidthDots > 2048 || pp.WidthDots%8 != 0 {
		return nil, fmt.Errorf("printer profile %s: width_dots %d must be a multiple of 8 from 96 to 2048", name, pp.WidthDots)
	}
	if _, ok := codePageNumbers[pp.CodePage]; !ok && pp.CodePage != "" {
		return nil, fmt.Errorf("printer profile %s: code_page %q is not one of pc437, pc850, pc858, wpc1252", name, pp.CodePage)
	}
	return &pp, nil
}

func profileNames() []string {
	var names []string
	ents, _ := fs.ReadDir(configs.Printers, "printers")
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}

// SetProfile makes the printer the profile's model: its paper width, and its state at
// power-on (Chinese mode, code page) from the next Serve or Parse on. Call it before Serve.
func (p *Printer) SetProfile(pp *PrinterProfile) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.WidthDots = pp.WidthDots
	p.Chinese = pp.Chinese
	p.CodePage = codePageNumbers[pp.CodePage]
}
