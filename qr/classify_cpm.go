package qr

// classifyCPM classifies an EMV consumer-presented code: the scheme comes from the first
// application whose AID the table knows. CPM codes carry a cryptogram like a card, so they
// may be captured offline where the risk policy allows.
func (c *Classifier) classifyCPM(cl *Classification, t *Table) {
	cpm, err := DecodeCPM(cl.Code)
	if err != nil {
		cl.Reason = "looks like an EMV consumer-presented code, but " + err.Error()
		return
	}
	cl.Kind = KindCPM
	for _, app := range cpm.Applications() {
		if s := t.schemeForGUI(app.AID); s != "" {
			cl.Scheme = s
			break
		}
	}
}
