"""The internal data-subject API (decision 0004): export, erase, restrict, rectify."""
