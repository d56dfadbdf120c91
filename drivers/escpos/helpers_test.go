package escpos

import (
	"os"
	"testing"

	"go.bug.st/serial"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/internal/possim"
	"github.com/posagent/posagent/internal/possim/possimtest"
	"github.com/posagent/posagent/qr"
)

// sampleReceipt is the docs/receipt.md receipt, grown to a realistic one: 30 lines or so on
// 58 mm paper, with a long name, Chinese text and an EMV QR payload (ASCII).
func sampleReceipt(t testing.TB) *posagent.Receipt {
	t.Helper()
	rc := &posagent.Receipt{
		Currency: "CNY",
		Header:   []string{"便利店 Corner Shop", "No. 1 Example Road, Haidian District", "Tel 010-12345678"},
		Items: []posagent.ReceiptItem{
			{Name: "矿泉水 Water 550ml", Quantity: 2, UnitPrice: 300, Amount: 600},
			{Name: "Instant noodles beef flavour family pack 5x120g", Quantity: 1, UnitPrice: 1590, Amount: 1590},
			{Name: "苹果 Apple", Quantity: 3, UnitPrice: 250, Amount: 750},
			{Name: "纸巾 Tissues", Quantity: 1, UnitPrice: 800, Amount: 800},
			{Name: "Milk 1L", Quantity: 2, UnitPrice: 1250, Amount: 2500},
			{Name: "面包 Bread", Quantity: 1, UnitPrice: 650, Amount: 650},
			{Name: "会员折扣 Member discount", Quantity: 1, UnitPrice: -300, Amount: -300},
		},
		Totals:   []posagent.ReceiptLine{{Label: "合计 Total", Amount: 6590}, {Label: "含税 incl. VAT 13%", Amount: 758}},
		Payments: []posagent.ReceiptLine{{Label: "WeChat Pay", Amount: 6590}},
		Lines:    []string{"Order 2024-0001-000042", "Cashier 07 · Terminal POS-3"},
		QR:       "00020101021229300012D156000000000510A93FO3230Q520441115802CN5914BEST TRANSPORT6007BEIJING540565.9053031566304",
		Footer:   []string{"谢谢惠顾 Thank you", "Keep this receipt for returns"},
	}
	if err := rc.Validate(); err != nil {
		t.Fatal(err)
	}
	return rc
}

func mustProfile(t testing.TB, name string) *Profile {
	t.Helper()
	p, err := LoadProfile(name, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// simPair starts the simulated printer on a pty and opens the pty's other side through
// go.bug.st/serial, as posagent opens a real port.
func simPair(t testing.TB, widthDots int) (*possim.Printer, serial.Port) {
	t.Helper()
	sim, path := possimtest.Printer(t, widthDots)
	port, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	// Registered after the simulator's cleanup, so it runs first: the port closes before
	// the pty goes away.
	t.Cleanup(func() { port.Close() })
	return sim, port
}

// openSerial opens the slave side of a pty as a serial port; the *os.File from pty.Open
// stays open too, so the master never reads EIO between tests' opens.
func openSerial(t testing.TB, tty *os.File) serial.Port {
	t.Helper()
	port, err := serial.Open(tty.Name(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("open %s: %v", tty.Name(), err)
	}
	t.Cleanup(func() { tty.Close() })
	return port
}

func rasterOf(wb, h int) qr.Raster {
	return qr.Raster{WidthBytes: wb, Height: h, Data: make([]byte, wb*h)}
}
