package posagent

// Scheme names a payment scheme or wallet, as reported by the QR classifier and stored
// with each sale. The values are stable identifiers used in JSON and in the journal.
type Scheme string

// Known schemes. The classifier's table is data and may report others.
const (
	SchemeWeChatPay  Scheme = "wechat-pay"
	SchemeAlipay     Scheme = "alipay"
	SchemeUnionPay   Scheme = "unionpay"
	SchemeECNY       Scheme = "e-cny"
	SchemeVisa       Scheme = "visa"
	SchemeMastercard Scheme = "mastercard"
	SchemeEMVCo      Scheme = "emvco"
	SchemeDiscover   Scheme = "discover"
	SchemeAmex       Scheme = "amex"
	SchemeJCB        Scheme = "jcb"
)

// Method is how a sale is paid.
type Method string

const (
	// MethodWalletCode is a consumer's wallet payment code (a one-time barcode/QR shown by
	// WeChat Pay, Alipay, UnionPay or e-CNY) scanned by the terminal.
	MethodWalletCode Method = "wallet-code"
	// MethodEMVCPM is an EMVCo consumer-presented QR code (card data in BER-TLV).
	MethodEMVCPM Method = "emv-cpm"
	// MethodMerchantQR is a merchant-presented (dynamic) QR code that the customer scans.
	MethodMerchantQR Method = "merchant-qr"
)
