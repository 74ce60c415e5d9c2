"""What every layer above identity needs of her record: her data keys, sealing her fields, her
notices and which networks act for her (decision 0035). Her record's services stay in
app/peacebuilders/; consent, below them, reaches these here."""
