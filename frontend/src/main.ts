import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { startApp } from './app.js';

startApp();
