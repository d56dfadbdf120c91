package qr

// classifyCPM is completed once the CPM decoder lands.
func (c *Classifier) classifyCPM(cl *Classification, t *Table) {
	cl.Kind = KindCPM
}
